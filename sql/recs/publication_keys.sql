-- the publications readers may see: those of completed runs, and of $completing, the run being completed
select publications.ds, publications.model, publications.run_id
from recs.publications as publications
join ops.runs as runs using (run_id)
where runs.status = 'completed' or runs.run_id = $completing
order by publications.ds, publications.model;
