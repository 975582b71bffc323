-- {table} comes from gnnrec's closed list of partitioned tables, never from input. Rows come in no promised order,
-- and name their file by its 1-based position in $files (partition/files.sql): a day of 10 M rows from one file
-- would otherwise carry 10 M copies of its path.
select * exclude (ds, source_file), list_position($files::varchar[], source_file) as file_number
from {table}
where ds = $ds;
