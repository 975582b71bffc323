-- {table} comes from gnnrec's closed list of partitioned tables, never from input; `staged` is a registered frame
insert into {table} by name select * from staged;
