-- give every item seen up to $ds (interacted with or linked to the KG) that has no index yet the next free one
insert into graph.item_ids (item_id, item_idx, first_ds)
with seen as (
    select item_id, ds from clean.interactions where ds <= $ds
    union all
    select item_id, ds from clean.item_entities where ds <= $ds
),

first_seen as (
    select item_id, min(ds) as first_ds from seen group by item_id
),

unassigned as (
    select first_seen.* from first_seen anti join graph.item_ids using (item_id)
),

final as (
    select
        item_id,
        (select coalesce(max(item_idx) + 1, 0) from graph.item_ids)
            + row_number() over (order by first_ds, item_id) - 1 as item_idx,
        first_ds
    from unassigned
)

select * from final;
