-- every row of an event (same user, item, event and time) that was landed with more than one rating (a missing
-- rating next to a given one counts as another)
with conflicting as (
    select user_id, item_id, event, ts
    from clean.interactions
    where ds = $ds
    group by all
    having min(rating) <> max(rating) or (count(rating) > 0 and count(rating) < count(*))
),

final as (
    select
        rows.source_file, rows.source_line,
        concat_ws(' ', rows.user_id, rows.item_id, rows.event, rows.ts::varchar, 'rating', coalesce(rows.rating::varchar, 'null')) as detail
    from clean.interactions as rows
    join conflicting using (user_id, item_id, event, ts)
    where rows.ds = $ds
)

select * from final order by source_file, source_line;
