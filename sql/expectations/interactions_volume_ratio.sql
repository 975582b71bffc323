-- the day's clean interactions over the mean of the trailing 7 days that had any (1 with no history)
with today as (
    select count(*) as events from clean.interactions where ds = $ds
),

earlier_days as (
    select ds, count(*) as events
    from clean.interactions
    where ds < $ds and ds >= $ds - 7
    group by ds
),

final as (
    select coalesce(today.events / nullif((select avg(events) from earlier_days), 0), 1.0) as measure
    from today
)

select * from final;
