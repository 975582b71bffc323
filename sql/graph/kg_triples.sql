-- distinct KG triples up to $ds as dense entity and relation indices
with triples as (
    select distinct head, relation, tail from clean.kg where ds <= $ds
),

final as (
    select h.entity_idx as head_idx, r.relation_idx, t.entity_idx as tail_idx
    from triples
    join graph.entity_ids as h on h.entity_id = triples.head
    join graph.relation_ids as r on r.relation = triples.relation
    join graph.entity_ids as t on t.entity_id = triples.tail
)

select * from final order by head_idx, relation_idx, tail_idx;
