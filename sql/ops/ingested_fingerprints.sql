-- what was ingested for each day up to $ds: the (source, path, sha256) of every file
select ds, source, path, sha256
from ops.ingest_files
where ds <= $ds
order by ds, source, path;
