-- the metrics of the newest earlier completed run of the same model, for comparison
with previous as (
    select run_id
    from ops.runs
    where model = $model and status = 'completed' and run_id <> $run_id and started_at < $started_at
        and run_id in (select run_id from ops.metrics)
    order by started_at desc
    limit 1
)

select metrics.run_id, metrics.metric, metrics.k, metrics.value
from ops.metrics as metrics
join previous using (run_id)
order by metric, k;
