-- distinct directed social edges up to $ds as dense user indices; self-loops carry no signal and are dropped
with edges as (
    select distinct src_user_id, dst_user_id from clean.social where ds <= $ds and src_user_id <> dst_user_id
),

final as (
    select src.user_idx as src_idx, dst.user_idx as dst_idx
    from edges
    join graph.user_ids as src on src.user_id = edges.src_user_id
    join graph.user_ids as dst on dst.user_id = edges.dst_user_id
)

select * from final order by src_idx, dst_idx;
