-- the day's triples about a flagged entity, quarantined under $entity_rule with the entity's score
insert into quarantine.kg (ds, source_file, source_line, column_name, rule, value, record)
with flagged as (
    select id as head, score from ops.suspects where ds = $ds and kind = 'entity' and flagged
),

final as (
    select
        -- provenance
        clean.ds,
        clean.source_file,
        clean.source_line,
        -- why
        'head' as column_name,
        $entity_rule as rule,
        printf('%.0f', flagged.score) as value,
        to_json({'head': raw.head, 'relation': raw.relation, 'tail': raw.tail})::varchar as record
    from clean.kg as clean
    join flagged using (head)
    join raw.kg as raw
        on raw.ds = clean.ds and raw.source_file = clean.source_file and raw.source_line = clean.source_line
    where clean.ds = $ds
)

select * from final;
