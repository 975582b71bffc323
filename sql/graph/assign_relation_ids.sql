-- give every KG relation seen up to $ds that has no index yet the next free one
insert into graph.relation_ids (relation, relation_idx, first_ds)
with first_seen as (
    select relation, min(ds) as first_ds from clean.kg where ds <= $ds group by relation
),

unassigned as (
    select first_seen.* from first_seen anti join graph.relation_ids using (relation)
),

final as (
    select
        relation,
        (select coalesce(max(relation_idx) + 1, 0) from graph.relation_ids)
            + row_number() over (order by first_ds, relation) - 1 as relation_idx,
        first_ds
    from unassigned
)

select * from final;
