-- a user's newest published list, per model; choose the user with `set variable user_id = 'u-...'`
-- (default: the first user in the store)
with latest as (
    select * from recs.latest_topk
),

chosen_user as (
    select coalesce(getvariable('user_id'), (select min(user_id) from latest)) as user_id
),

item_reach as (
    select ds, model, item_id, count(*) as recommended_to_users from latest group by all
),

final as (
    select latest.ds, latest.model, latest.user_id, latest.rank, latest.item_id,
        round(latest.score, 4) as score, item_reach.recommended_to_users
    from latest
    join chosen_user using (user_id)
    join item_reach using (ds, model, item_id)
)

select * from final order by model, rank;
