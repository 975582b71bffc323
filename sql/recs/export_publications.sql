select publications.*
from recs.publications as publications
join ops.runs as runs using (run_id)
where runs.status = 'completed' or runs.run_id = $completing
order by publications.ds, publications.model;
