-- {table} comes from gnnrec's closed list of partitioned tables, never from input: the rows of $ds from the files
-- $first_file to $last_file (in name order) and lines $first_line to $last_line, in no promised order. Rows name
-- their file by its 1-based position in $files (partition/file_lines.sql): a day of 10 M rows from one file would
-- otherwise carry 10 M copies of its path. Rows are inserted in file and line order, so the line range skips
-- every row group outside it.
select
    * exclude (ds, source_file),
    -- a chunk of one file (the usual case) needs no lookup per row
    if($first_file = $last_file, list_position($files::varchar[], $first_file), list_position($files::varchar[], source_file))
        as file_number
from {table}
where ds = $ds
    and source_file between $first_file and $last_file
    and source_line between $first_line and $last_line;
