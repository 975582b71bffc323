-- each model's newest completed evaluated run, side by side at K = 20, one row per evaluation protocol (full,
-- sampled:N; rating models add MAE/RMSE under `rating`, click models AUC/F1 under `ctr`)
with evaluated as (
    select runs.run_id, runs.model, runs.ds, runs.started_at
    from ops.runs as runs
    where runs.status = 'completed' and runs.run_id in (select run_id from ops.metrics)
),

newest as (
    select * from evaluated
    qualify row_number() over (partition by model order by ds desc, started_at desc) = 1
),

final as (
    select newest.model, newest.ds, newest.run_id,
        max(metrics.value) filter (where metrics.metric = 'recall') as recall_20,
        max(metrics.value) filter (where metrics.metric = 'ndcg') as ndcg_20,
        max(metrics.value) filter (where metrics.metric = 'precision') as precision_20,
        max(metrics.value) filter (where metrics.metric = 'hit_rate') as hit_rate_20,
        max(metrics.value) filter (where metrics.metric = 'mrr') as mrr_20,
        max(metrics.value) filter (where metrics.metric = 'rmse') as rmse,
        max(metrics.value) filter (where metrics.metric = 'mae') as mae,
        max(metrics.value) filter (where metrics.metric = 'auc') as auc,
        max(metrics.value) filter (where metrics.metric = 'f1') as f1,
        metrics.protocol
    from newest
    join ops.metrics as metrics on metrics.run_id = newest.run_id and (metrics.k = 20 or metrics.k is null)
    group by all
)

select * from final order by recall_20 desc nulls last, model, protocol;
