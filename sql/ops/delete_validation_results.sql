delete from ops.validation_results where run_id = $run_id and ds = $ds;
