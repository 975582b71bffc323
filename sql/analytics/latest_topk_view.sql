-- each model's newest published day
create or replace view recs.latest_topk as
with newest as (
    select model, max(ds) as ds from recs.publications group by model
)

select topk.*
from recs.topk as topk
join newest using (model, ds);
