-- each item taken on $ds: how many of the day's new accounts took it, against two baselines of how often a new
-- account would: the debut profiles of earlier accounts (their first day's items) and the day's established users
with day_pairs as (
    select distinct user_id, item_id from clean.interactions where ds = $ds
),

earlier as (
    select user_id, item_id, ds from clean.interactions where ds < $ds
),

debuts as (
    select user_id, min(ds) as first_ds from earlier group by all
),

debut_pairs as (
    select distinct earlier.user_id, earlier.item_id
    from earlier
    join debuts on debuts.user_id = earlier.user_id and debuts.first_ds = earlier.ds
),

day_users as (
    select distinct day_pairs.user_id, debuts.user_id is null as is_new
    from day_pairs
    left join debuts using (user_id)
),

per_item as (
    select
        day_pairs.item_id,
        count(*) filter (where day_users.is_new) as new_users,
        count(*) filter (where not day_users.is_new) as established_users
    from day_pairs
    join day_users using (user_id)
    group by all
),

debut_counts as (
    select item_id, count(*) as debut_users from debut_pairs group by all
),

final as (
    select
        -- ids
        per_item.item_id,
        -- the item's counts
        per_item.new_users,
        per_item.established_users,
        coalesce(debut_counts.debut_users, 0) as debut_users,
        -- the day's and the history's sizes, the same on every row
        (select count(*) from day_users where is_new) as day_new_users,
        (select count(*) from day_users where not is_new) as day_established_users,
        (select count(*) from debuts) as debut_profiles,
        (select count(*) from debut_pairs) as debut_pairs,
        (select count(distinct item_id) from clean.interactions where ds <= $ds) as catalog_items
    from per_item
    left join debut_counts using (item_id)
)

select * from final order by item_id;
