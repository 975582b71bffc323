-- {table} comes from gnnrec's closed list of partitioned tables, never from input: each file of $ds with its row
-- count and line range, in file order (validation reads a day in chunks of these)
select source_file, count(*) as row_count, min(source_line) as first_line, max(source_line) as last_line
from {table}
where ds = $ds
group by source_file
order by source_file;
