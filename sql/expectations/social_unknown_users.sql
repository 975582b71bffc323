-- edges with an end that has no interaction up to the day: gnnrec cannot place that user in the graph
with known as (
    select distinct user_id from clean.interactions where ds <= $ds
),

final as (
    select
        edges.source_file, edges.source_line,
        concat_ws(' ', edges.src_user_id, '->', edges.dst_user_id) as detail
    from clean.social as edges
    left join known as src on src.user_id = edges.src_user_id
    left join known as dst on dst.user_id = edges.dst_user_id
    where edges.ds = $ds and (src.user_id is null or dst.user_id is null)
)

select * from final order by source_file, source_line;
