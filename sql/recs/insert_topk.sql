-- publish one (ds, model) list with external ids; `staged_topk` holds (user_idx, rank, item_idx, score)
insert into recs.topk
with ranked as (
    select * from staged_topk
),

final as (
    select
        -- partition
        cast($ds as date) as ds,
        cast($model as varchar) as model,
        cast($run_id as varchar) as run_id,
        -- ids
        users.user_id,
        ranked.rank,
        items.item_id,
        -- score
        ranked.score
    from ranked
    join graph.user_ids as users using (user_idx)
    join graph.item_ids as items using (item_idx)
)

select * from final order by user_id, rank;
