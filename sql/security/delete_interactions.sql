-- the flagged accounts' interactions leave clean once quarantine holds them
delete from clean.interactions
where ds = $ds and user_id in (select id from ops.suspects where ds = $ds and kind = 'user' and flagged);
