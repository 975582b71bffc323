select metric, k, value from ops.metrics where run_id = $run_id order by metric, k;
