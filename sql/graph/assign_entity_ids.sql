-- give every KG entity seen up to $ds that has no index yet the next free one
insert into graph.entity_ids (entity_id, entity_idx, first_ds)
with seen as (
    select head as entity_id, ds from clean.kg where ds <= $ds
    union all
    select tail as entity_id, ds from clean.kg where ds <= $ds
    union all
    select entity_id, ds from clean.item_entities where ds <= $ds
),

first_seen as (
    select entity_id, min(ds) as first_ds from seen group by entity_id
),

unassigned as (
    select first_seen.* from first_seen anti join graph.entity_ids using (entity_id)
),

final as (
    select
        entity_id,
        (select coalesce(max(entity_idx) + 1, 0) from graph.entity_ids)
            + row_number() over (order by first_ds, entity_id) - 1 as entity_idx,
        first_ds
    from unassigned
)

select * from final;
