-- the day's files that lack a required column, and which
select source, path, missing_columns
from ops.ingest_files
where ds = $ds and len(missing_columns) > 0
order by source, path;
