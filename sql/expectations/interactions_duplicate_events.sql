-- exact duplicates: every copy after the first of an event with the same user, item, event, time and rating
-- (grouping first, so that only duplicated events are numbered)
with duplicated as (
    select user_id, item_id, event, ts, rating
    from clean.interactions
    where ds = $ds
    group by all
    having count(*) > 1
),

numbered as (
    select
        rows.source_file, rows.source_line, rows.user_id, rows.item_id, rows.event, rows.ts,
        row_number() over (
            partition by rows.user_id, rows.item_id, rows.event, rows.ts, rows.rating
            order by rows.source_file, rows.source_line
        ) as copy
    from clean.interactions as rows
    join duplicated
        on rows.user_id = duplicated.user_id
        and rows.item_id = duplicated.item_id
        and rows.event = duplicated.event
        and rows.ts = duplicated.ts
        and rows.rating is not distinct from duplicated.rating
    where rows.ds = $ds
),

final as (
    select source_file, source_line, concat_ws(' ', user_id, item_id, event, ts::varchar) as detail
    from numbered
    where copy > 1
)

select * from final order by source_file, source_line;
