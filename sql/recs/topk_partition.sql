select ds, model, run_id, user_id, rank, item_id, score
from recs.topk
where ds = $ds and model = $model
order by user_id, rank;
