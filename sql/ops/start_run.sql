insert or replace into ops.runs (run_id, flow, ds, model, params, status, message, started_at, finished_at, flow_run_id)
values ($run_id, $flow, $ds, $model, $params, 'running', null, $started_at, null, $flow_run_id);
