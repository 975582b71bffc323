-- {table} comes from gnnrec's closed list of partitioned tables, never from input
select * from {table} where ds = $ds order by all;
