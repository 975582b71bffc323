-- after validation: how many of each file's rows reached clean and how many (distinct rows) went to quarantine
with loaded as (
    select source_file, count(*) as rows_loaded from clean.interactions where ds = $ds group by all
    union all
    select source_file, count(*) from clean.social where ds = $ds group by all
    union all
    select source_file, count(*) from clean.kg where ds = $ds group by all
    union all
    select source_file, count(*) from clean.item_entities where ds = $ds group by all
),

quarantined_rows as (
    select distinct source_file, source_line from quarantine.interactions where ds = $ds
    union all
    select distinct source_file, source_line from quarantine.social where ds = $ds
    union all
    select distinct source_file, source_line from quarantine.kg where ds = $ds
    union all
    select distinct source_file, source_line from quarantine.item_entities where ds = $ds
),

quarantined as (
    select source_file, count(*) as rows_quarantined from quarantined_rows group by all
),

final as (
    select
        files.path,
        coalesce(loaded.rows_loaded, 0) as rows_loaded,
        coalesce(quarantined.rows_quarantined, 0) as rows_quarantined
    from ops.ingest_files as files
    left join loaded on loaded.source_file = files.path
    left join quarantined on quarantined.source_file = files.path
    where files.ds = $ds and files.status <> 'failed'
)

update ops.ingest_files as target
set rows_loaded = final.rows_loaded, rows_quarantined = final.rows_quarantined
from final
where target.ds = $ds and target.path = final.path;
