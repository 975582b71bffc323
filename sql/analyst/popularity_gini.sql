-- popularity concentration: the Gini coefficient of how often each catalog item is recommended, per (ds, model);
-- 0 = every item recommended equally often, near 1 = a few items take every slot (unrecommended items count as 0)
with partitions as (
    select distinct ds, model from recs.topk
),

slots as (
    select ds, model, item_id, count(*) as times from recs.topk group by all
),

per_item as (
    select partitions.ds, partitions.model, items.item_id, coalesce(slots.times, 0) as times
    from partitions
    join catalog.items as items on items.first_ds <= partitions.ds
    left join slots using (ds, model, item_id)
),

ranked as (
    select ds, model, times, row_number() over (partition by ds, model order by times, item_id) as position
    from per_item
),

final as (
    select ds, model, count(*) as catalog_items,
        2.0 * sum(position * times) / (count(*) * sum(times)) - (count(*) + 1.0) / count(*) as gini
    from ranked
    group by all
)

select * from final order by ds, model;
