delete from recs.topk where ds = $ds and model = $model;
