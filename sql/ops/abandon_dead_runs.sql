-- runs still marked running when a new run takes the writer lock: their process is gone (it held the lock)
update ops.runs
set status = 'abandoned',
    finished_at = $found_at,
    message = 'found running by run ' || $found_by || ' at ' || strftime($found_at, '%Y-%m-%d %H:%M:%S')
        || ' UTC: its process died without finishing'
where status = 'running' and run_id <> $found_by
returning run_id;
