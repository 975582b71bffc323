-- the share of real users (fakes left out) with a published list of ($ds, $model) who had not taken a target up
-- to $ds, whose top $k holds a target
with published as (
    select user_id, item_id, rank from recs.topk where ds = $ds and model = $model
),

users as (
    select distinct user_id from published where user_id not in (select unnest($fakes::varchar[]))
),

audience as (
    select distinct user_id from clean.interactions
    where ds <= $ds and item_id in (select unnest($targets::varchar[]))
),

eligible as (
    select user_id from users anti join audience using (user_id)
),

hits as (
    select distinct published.user_id
    from published
    semi join eligible using (user_id)
    where published.rank <= $k and published.item_id in (select unnest($targets::varchar[]))
),

final as (
    select (select count(*) from hits) / nullif((select count(*) from eligible), 0) as hit_rate
)

select * from final;
