-- the registry as the analysts' store shows it; $completing is the run whose completion the store is refreshed
-- for (it is marked completed in the warehouse right after the store shows it)
select * replace (
    case when run_id = $completing then 'completed' else status end as status,
    case when run_id = $completing then coalesce(finished_at, $now) else finished_at end as finished_at
)
from ops.runs
order by started_at;
