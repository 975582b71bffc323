-- catalog coverage: the share of the day's catalog recommended to at least one user, per (ds, model)
with recommended as (
    select ds, model, count(distinct item_id) as items_recommended from recs.topk group by all
),

catalog_size as (
    select recommended.ds, count(items.item_id) as catalog_items
    from (select distinct ds from recommended) as recommended
    join catalog.items as items on items.first_ds <= recommended.ds
    group by all
),

final as (
    select recommended.ds, recommended.model, recommended.items_recommended, catalog_size.catalog_items,
        recommended.items_recommended / catalog_size.catalog_items as coverage
    from recommended
    join catalog_size using (ds)
)

select * from final order by ds, model;
