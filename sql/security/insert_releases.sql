-- an operator's releases of $ds; releasing the same id again keeps the first release
insert into ops.releases (ds, kind, id, released_at)
with asked as (
    select distinct unnest($ids::varchar[]) as id
),

final as (
    select $ds as ds, $kind as kind, asked.id, $released_at as released_at
    from asked
    anti join (select id from ops.releases where ds = $ds and kind = $kind) as known using (id)
)

select * from final;
