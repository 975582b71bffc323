update ops.runs set status = $status, message = $message, finished_at = $finished_at where run_id = $run_id;
