-- the flagged entities' triples of the day leave clean once quarantine holds them
delete from clean.kg
where ds = $ds and head in (select id from ops.suspects where ds = $ds and kind = 'entity' and flagged);
