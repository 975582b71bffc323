-- how many clean rows each source has on $ds (a suite over a source with no rows that day has nothing to check)
select 'interactions' as source, count(*) as rows from clean.interactions where ds = $ds
union all
select 'social', count(*) from clean.social where ds = $ds
union all
select 'kg', count(*) from clean.kg where ds = $ds
union all
select 'item_entities', count(*) from clean.item_entities where ds = $ds;
