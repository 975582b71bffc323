-- {table} comes from gnnrec's closed list of partitioned tables, never from input
delete from {table} where ds = $ds;
