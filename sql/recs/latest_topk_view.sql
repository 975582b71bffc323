-- each model's newest day published by a completed run
create or replace view recs.latest_topk as
with served as (
    select publications.ds, publications.model, publications.run_id
    from recs.publications as publications
    join ops.runs as runs using (run_id)
    where runs.status = 'completed'
),

newest as (
    select model, max(ds) as ds from served group by model
)

select topk.*
from recs.topk as topk
join newest using (model, ds)
join served using (model, ds, run_id);
