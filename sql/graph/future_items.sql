-- items inside the catalog of $catalog_ds that did not exist yet on $as_of: never rankable as of $as_of
-- (new items when evaluating on a held-out window; otherwise only after out-of-order re-landing)
select item_idx
from graph.item_ids
where first_ds > $as_of
  and item_idx < (select coalesce(max(item_idx) + 1, 0) from graph.item_ids where first_ds <= $catalog_ds)
order by item_idx;
