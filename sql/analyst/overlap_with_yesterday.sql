-- how much of each user's newest list was already in their list the day before, per model (users who had one)
-- (one user with `set variable user_id = 'u-...'`; default: every user)
with today as (
    select * from recs.latest_topk
    where getvariable('user_id') is null or user_id = getvariable('user_id')
),

yesterday as (
    select topk.model, topk.user_id, topk.item_id
    from recs.topk as topk
    join (select distinct model, ds from today) as newest
        on topk.model = newest.model and topk.ds = newest.ds - interval 1 day
),

final as (
    select today.ds, today.model, today.user_id,
        count(yesterday.item_id) as items_kept,
        count(*) as list_length,
        count(yesterday.item_id) / count(*) as overlap
    from today
    left join yesterday
        on yesterday.model = today.model and yesterday.user_id = today.user_id and yesterday.item_id = today.item_id
    where exists (select 1 from yesterday as y where y.model = today.model and y.user_id = today.user_id)
    group by all
)

select * from final order by model, user_id;
