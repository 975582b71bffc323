-- {table} comes from gnnrec's closed list of partitioned tables, never from input; `staged` is a registered frame of
-- one landed file's rows (line numbers and landed columns; a column the file lacks is null). The day and the file
-- are the same for every row, so they are bound once here rather than copied into every staged row.
insert into {table} by name select $ds::date as ds, $source_file::varchar as source_file, * from staged;
