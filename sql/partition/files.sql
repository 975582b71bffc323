-- {table} comes from gnnrec's closed list of partitioned tables, never from input
select distinct source_file from {table} where ds = $ds order by source_file;
