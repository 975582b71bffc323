-- the share of the day's scored new accounts that the defence flagged (0 when it scored none)
with scored as (
    select flagged from ops.suspects where ds = $ds and kind = 'user'
),

final as (
    select coalesce(count(*) filter (where flagged) / nullif(count(*), 0), 0.0) as measure from scored
)

select * from final;
