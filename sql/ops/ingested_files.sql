-- every file recorded for $ds, as ingest wrote it
select ds, source, path, sha256, size_bytes, rows_read, missing_columns, extra_columns, status, error
from ops.ingest_files
where ds = $ds
order by source, path;
