-- one run, found by its full id or a unique prefix of it
select *
from ops.runs
where starts_with(run_id, $run_id)
order by started_at;
