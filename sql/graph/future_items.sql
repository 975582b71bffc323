-- items whose index lies inside the day's catalog but which were first seen after $ds (only after out-of-order
-- re-landing): they must never be recommended for $ds
select item_idx
from graph.item_ids
where first_ds > $ds
  and item_idx < (select coalesce(max(item_idx) + 1, 0) from graph.item_ids where first_ds <= $ds)
order by item_idx;
