select item_id, first_ds from graph.item_ids order by item_idx;
