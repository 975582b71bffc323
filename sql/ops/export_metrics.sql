select * from ops.metrics order by run_id, metric, k;
