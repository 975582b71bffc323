-- the flagged accounts' social edges leave clean once quarantine holds them
delete from clean.social
where ds = $ds and (
    src_user_id in (select id from ops.suspects where ds = $ds and kind = 'user' and flagged)
    or dst_user_id in (select id from ops.suspects where ds = $ds and kind = 'user' and flagged)
);
