-- {files}: the Parquet file of each published (ds, model), one generation each
create or replace view recs.topk as
select ds, model, run_id, user_id, rank, item_id, score
from read_parquet({files});
