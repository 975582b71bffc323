-- send a decided day back to be validated and decided again by the next run (from its raw rows)
update ops.day_progress set state = 'ingested', updated_at = now()::timestamp
where ds = $ds and state in ('validated', 'accepted', 'refused');
