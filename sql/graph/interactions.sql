-- every distinct (user, item) interaction up to $ds as dense indices, with the day it was first seen and the
-- latest explicit rating (null when the source gave none)
with events as (
    select user_id, item_id, ds, rating, ts, source_file, source_line from clean.interactions where ds <= $ds
),

pairs as (
    select
        user_id,
        item_id,
        min(ds) as first_ds,
        arg_max(rating, (ts, source_file, source_line)) filter (where rating is not null) as rating
    from events
    group by user_id, item_id
),

final as (
    select u.user_idx, i.item_idx, pairs.first_ds, pairs.rating
    from pairs
    join graph.user_ids as u using (user_id)
    join graph.item_ids as i using (item_id)
)

select * from final order by user_idx, item_idx;
