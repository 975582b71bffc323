-- {table} comes from gnnrec's closed list of partitioned tables, never from input; `staged` is a registered frame of
-- checked rows naming their file by its 1-based position in $files (partition/scan.sql): the day and the path are
-- added here rather than copied into every staged row.
insert into {table} by name
select $ds::date as ds, ($files::varchar[])[file_number] as source_file, * exclude (file_number)
from staged;
