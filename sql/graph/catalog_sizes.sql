-- how many users, items, entities and relations the index maps hold for days up to $ds
select
    (select coalesce(max(user_idx) + 1, 0) from graph.user_ids where first_ds <= $ds) as num_users,
    (select coalesce(max(item_idx) + 1, 0) from graph.item_ids where first_ds <= $ds) as num_items,
    (select coalesce(max(entity_idx) + 1, 0) from graph.entity_ids where first_ds <= $ds) as num_entities,
    (select coalesce(max(relation_idx) + 1, 0) from graph.relation_ids where first_ds <= $ds) as num_relations;
