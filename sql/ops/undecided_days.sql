-- days up to $ds that hold ingested files but whose data contracts have not accepted them
with ingested as (
    select distinct ds from ops.ingest_files where ds <= $ds
),

final as (
    select ingested.ds, progress.state
    from ingested
    left join ops.day_progress as progress using (ds)
    where progress.state is distinct from 'accepted'
)

select * from final order by ds;
