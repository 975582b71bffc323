-- days up to $ds whose most recent contract check (by the run that made it) failed a critical check
with checks as (
    select distinct results.ds, results.run_id, runs.started_at
    from ops.validation_results as results
    join ops.runs as runs using (run_id)
    where results.ds <= $ds
),

latest as (
    select ds, run_id
    from checks
    qualify row_number() over (partition by ds order by started_at desc, run_id desc) = 1
),

final as (
    select distinct results.ds
    from ops.validation_results as results
    join latest using (ds, run_id)
    where results.critical and not results.success
)

select * from final order by ds;
