-- {table} comes from gnnrec's closed list of partitioned tables, never from input: the first quarantined rows of
-- $ds in file and line order, for an operator's error message
select source_file, source_line, column_name, rule, value
from {table}
where ds = $ds
order by source_file, source_line, column_name, rule
limit $rows;
