-- links from an item that has no interaction up to the day
with known as (
    select distinct item_id from clean.interactions where ds <= $ds
),

final as (
    select links.source_file, links.source_line, links.item_id as detail
    from clean.item_entities as links
    anti join known using (item_id)
    where links.ds = $ds
)

select * from final order by source_file, source_line;
