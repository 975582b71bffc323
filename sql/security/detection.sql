-- the accounts the defence flagged on $ds, how many of them are the attack's $fakes, and the genuine new accounts
-- it scored
with scored as (
    select id, flagged, id in (select unnest($fakes::varchar[])) as is_fake
    from ops.suspects
    where ds = $ds and kind = 'user'
),

final as (
    select
        count(*) filter (where flagged) as flagged,
        count(*) filter (where flagged and is_fake) as true_positives,
        count(*) filter (where not is_fake) as genuine_scored
    from scored
)

select * from final;
