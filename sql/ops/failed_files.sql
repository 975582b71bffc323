-- the day's files that could not be read, with the reason
select source, path, error
from ops.ingest_files
where ds = $ds and status = 'failed'
order by source, path;
