-- the day's interactions of the flagged accounts, quarantined under $rule with the account's score as the value
-- and the landed row as the record; the insert's count is the rows moved
insert into quarantine.interactions (ds, source_file, source_line, column_name, rule, value, record)
with flagged as (
    select id as user_id, score from ops.suspects where ds = $ds and kind = 'user' and flagged
),

final as (
    select
        -- provenance
        clean.ds,
        clean.source_file,
        clean.source_line,
        -- why
        'user_id' as column_name,
        $rule as rule,
        printf('%.2f', flagged.score) as value,
        to_json({'user_id': raw.user_id, 'item_id': raw.item_id, 'event': raw.event, 'rating': raw.rating, 'ts': raw.ts})::varchar as record
    from clean.interactions as clean
    join flagged using (user_id)
    join raw.interactions as raw
        on raw.ds = clean.ds and raw.source_file = clean.source_file and raw.source_line = clean.source_line
    where clean.ds = $ds
)

select * from final;
