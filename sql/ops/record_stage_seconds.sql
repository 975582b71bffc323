update ops.runs set stage_seconds = $stage_seconds where run_id = $run_id;
