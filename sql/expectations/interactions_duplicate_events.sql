-- exact duplicates: every copy after the first of an event with the same user, item, event, time and rating
with numbered as (
    select
        source_file, source_line, user_id, item_id, event, ts,
        row_number() over (
            partition by user_id, item_id, event, ts, rating order by source_file, source_line
        ) as copy
    from clean.interactions
    where ds = $ds
),

final as (
    select source_file, source_line, concat_ws(' ', user_id, item_id, event, ts::varchar) as detail
    from numbered
    where copy > 1
)

select * from final order by source_file, source_line;
