-- triples whose relation never occurred on an earlier day; the first day with triples sets the vocabulary
with vocabulary as (
    select distinct relation from clean.kg where ds < $ds
),

final as (
    select triples.source_file, triples.source_line, triples.relation as detail
    from clean.kg as triples
    anti join vocabulary using (relation)
    where triples.ds = $ds and exists (select 1 from vocabulary)
)

select * from final order by source_file, source_line;
