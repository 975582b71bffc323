-- give every user seen up to $ds that has no index yet the next free one; existing users keep theirs
insert into graph.user_ids (user_id, user_idx, first_ds)
with seen as (
    select user_id, ds from clean.interactions where ds <= $ds
    union all
    select src_user_id as user_id, ds from clean.social where ds <= $ds
    union all
    select dst_user_id as user_id, ds from clean.social where ds <= $ds
),

first_seen as (
    select user_id, min(ds) as first_ds from seen group by user_id
),

unassigned as (
    select first_seen.* from first_seen anti join graph.user_ids using (user_id)
),

final as (
    select
        user_id,
        (select coalesce(max(user_idx) + 1, 0) from graph.user_ids)
            + row_number() over (order by first_ds, user_id) - 1 as user_idx,
        first_ds
    from unassigned
)

select * from final;
