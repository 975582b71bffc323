insert or replace into ops.day_progress (ds, state, inputs_digest, run_id, updated_at)
values ($ds, $state, $inputs_digest, $run_id, now()::timestamp);
