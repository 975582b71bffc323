-- the share of the day's items never seen on an earlier day (0 while there is no earlier day)
with today as (
    select distinct item_id from clean.interactions where ds = $ds
),

earlier as (
    select distinct item_id from clean.interactions where ds < $ds
),

final as (
    select
        case
            when (select count(*) from earlier) = 0 then 0.0
            else coalesce((select count(*) from today anti join earlier using (item_id)) / nullif((select count(*) from today), 0), 0.0)
        end as measure
)

select * from final;
