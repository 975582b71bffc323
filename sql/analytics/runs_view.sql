-- the registry's JSON columns arrive from Parquet as text: typed back as JSON
create or replace view ops.runs as
select * replace (
    params::json as params, input_files::json as input_files, library_versions::json as library_versions,
    stage_seconds::json as stage_seconds
)
from read_parquet({files});
