-- the newest runs with their headline holdout metrics
with runs as (
    select * from ops.runs order by started_at desc limit $limit
),

-- a run's headline protocol: full ranking where it has one (min sorts 'full' before 'sampled:N')
protocols as (
    select run_id, min(protocol) filter (where metric = 'recall') as protocol
    from ops.metrics
    group by run_id
),

headline as (
    select metrics.run_id, protocols.protocol,
        max(metrics.value) filter (where metrics.metric = 'recall' and metrics.k = 20) as recall_20,
        max(metrics.value) filter (where metrics.metric = 'ndcg' and metrics.k = 20) as ndcg_20
    from ops.metrics as metrics
    join protocols on protocols.run_id = metrics.run_id
        and metrics.protocol is not distinct from protocols.protocol
    group by all
),

final as (
    select
        runs.run_id, runs.flow, runs.ds, runs.model, runs.status,
        runs.started_at,
        date_diff('millisecond', runs.started_at, runs.finished_at) / 1000.0 as seconds,
        headline.protocol, headline.recall_20, headline.ndcg_20,
        runs.message
    from runs
    left join headline using (run_id)
)

select * from final order by started_at desc;
