-- completed runs of one day, newest first: a backfill skips the day when one matches its inputs and parameters
select run_id, params, inputs_digest
from ops.runs
where ds = $ds and status = 'completed' and inputs_digest is not null
order by finished_at desc;
