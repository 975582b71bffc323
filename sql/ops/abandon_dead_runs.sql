-- runs still marked running whose process is gone: $dead, found by the run $found_by
update ops.runs
set status = 'abandoned',
    finished_at = $found_at,
    message = 'found running by run ' || $found_by || ' at ' || strftime($found_at, '%Y-%m-%d %H:%M:%S')
        || ' UTC: its process died without finishing'
where status = 'running' and list_contains($dead, run_id)
returning run_id;
