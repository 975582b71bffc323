-- `staged_metrics` holds (metric, k, value) for one run
insert into ops.metrics
select cast($run_id as varchar) as run_id, metric, k, value from staged_metrics order by metric, k;
