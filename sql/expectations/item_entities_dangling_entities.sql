-- links to an entity that is in no knowledge-graph triple up to the day: a dangling entity
with entities as (
    select head as entity_id from clean.kg where ds <= $ds
    union
    select tail from clean.kg where ds <= $ds
),

final as (
    select links.source_file, links.source_line, links.entity_id as detail
    from clean.item_entities as links
    anti join entities using (entity_id)
    where links.ds = $ds
)

select * from final order by source_file, source_line;
