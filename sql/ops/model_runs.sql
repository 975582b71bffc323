-- every run of $model, newest first: whose checkpoints to keep (tasks/checkpoints.py)
select run_id, status
from ops.runs
where model = $model
order by started_at desc, run_id desc;
