-- the items each account first seen on $ds took that day (an account with a clean interaction before is established)
with day_pairs as (
    select distinct user_id, item_id from clean.interactions where ds = $ds
),

earlier as (
    select distinct user_id from clean.interactions where ds < $ds
),

final as (
    select day_pairs.user_id, day_pairs.item_id
    from day_pairs
    anti join earlier using (user_id)
)

select * from final order by user_id, item_id;
