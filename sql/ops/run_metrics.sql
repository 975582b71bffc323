select protocol, metric, k, value from ops.metrics where run_id = $run_id order by protocol, metric, k;
