-- the newest published top-5 of three users, per model, next to how many users interacted with each item
with latest as (
    select * from recs.latest_topk where rank <= 5
),

sample_users as (
    select distinct user_id from latest order by user_id limit 3
),

item_reach as (
    select item_id, count(distinct user_id) as item_users from clean.interactions group by item_id
),

final as (
    select latest.ds, latest.model, latest.user_id, latest.rank, latest.item_id,
        round(latest.score, 4) as score, coalesce(item_reach.item_users, 0) as item_users
    from latest
    join sample_users using (user_id)
    left join item_reach using (item_id)
)

select * from final order by model, user_id, rank;
