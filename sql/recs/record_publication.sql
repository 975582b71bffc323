-- one row per published (ds, model): which run it came from, when, and how big it is
insert into recs.publications
with published as (
    select count(distinct user_id) as users, count(*) as rows
    from recs.topk
    where ds = $ds and model = $model
),

final as (
    select cast($ds as date) as ds, cast($model as varchar) as model, cast($run_id as varchar) as run_id,
        cast($published_at as timestamp) as published_at, published.users, published.rows
    from published
)

select * from final
returning users, rows;
