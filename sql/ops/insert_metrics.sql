-- `staged_metrics` holds (protocol, metric, k, value) for one run; k is null for a metric without a cut-off
insert into ops.metrics (run_id, metric, k, value, protocol)
select cast($run_id as varchar) as run_id, metric, k, value, protocol from staged_metrics order by protocol, metric, k;
