-- {table} comes from gnnrec's closed list of partitioned tables, never from input; $keep lists the files whose
-- rows stay (ingested before with the same sha256)
delete from {table} where ds = $ds and not list_contains($keep::varchar[], source_file);
