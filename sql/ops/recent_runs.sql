-- the newest runs with their headline holdout metrics
with runs as (
    select * from ops.runs order by started_at desc limit $limit
),

headline as (
    select run_id,
        max(value) filter (where metric = 'recall' and k = 20) as recall_20,
        max(value) filter (where metric = 'ndcg' and k = 20) as ndcg_20
    from ops.metrics
    group by run_id
),

final as (
    select
        runs.run_id, runs.flow, runs.ds, runs.model, runs.status,
        runs.started_at,
        date_diff('millisecond', runs.started_at, runs.finished_at) / 1000.0 as seconds,
        headline.recall_20, headline.ndcg_20,
        runs.message
    from runs
    left join headline using (run_id)
)

select * from final order by started_at desc;
