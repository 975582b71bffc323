-- each item's KG entity as of $ds (the most recently landed link wins)
with links as (
    select item_id, arg_max(entity_id, (ds, source_file, source_line)) as entity_id
    from clean.item_entities
    where ds <= $ds
    group by item_id
),

final as (
    select i.item_idx, e.entity_idx
    from links
    join graph.item_ids as i using (item_id)
    join graph.entity_ids as e using (entity_id)
)

select * from final order by item_idx;
