delete from ops.metrics where run_id = $run_id;
