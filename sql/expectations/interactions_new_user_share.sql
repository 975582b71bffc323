-- the share of the day's users never seen on an earlier day (0 while there is no earlier day)
with today as (
    select distinct user_id from clean.interactions where ds = $ds
),

earlier as (
    select distinct user_id from clean.interactions where ds < $ds
),

final as (
    select
        case
            when (select count(*) from earlier) = 0 then 0.0
            else coalesce((select count(*) from today anti join earlier using (user_id)) / nullif((select count(*) from today), 0), 0.0)
        end as measure
)

select * from final;
