select run_id from ops.runs where status = 'running' order by started_at;
