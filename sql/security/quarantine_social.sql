-- the day's social edges with a flagged account at either end, quarantined under $rule with that account's score
insert into quarantine.social (ds, source_file, source_line, column_name, rule, value, record)
with flagged as (
    select id as user_id, score from ops.suspects where ds = $ds and kind = 'user' and flagged
),

final as (
    select
        -- provenance
        clean.ds,
        clean.source_file,
        clean.source_line,
        -- why: the source end when it is flagged, else the destination
        case when src.user_id is not null then 'src_user_id' else 'dst_user_id' end as column_name,
        $rule as rule,
        printf('%.2f', coalesce(src.score, dst.score)) as value,
        to_json({'src_user_id': raw.src_user_id, 'dst_user_id': raw.dst_user_id, 'weight': raw.weight, 'ts': raw.ts})::varchar as record
    from clean.social as clean
    left join flagged as src on src.user_id = clean.src_user_id
    left join flagged as dst on dst.user_id = clean.dst_user_id
    join raw.social as raw
        on raw.ds = clean.ds and raw.source_file = clean.source_file and raw.source_line = clean.source_line
    where clean.ds = $ds and (src.user_id is not null or dst.user_id is not null)
)

select * from final;
