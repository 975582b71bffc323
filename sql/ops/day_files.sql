-- the (source, path, sha256) of every file recorded for one day
select source, path, sha256
from ops.ingest_files
where ds = $ds;
