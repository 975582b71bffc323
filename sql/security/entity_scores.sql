-- each KG head with triples on $ds that was described before $ds and belongs to an item in the less popular half
-- (popularity before the day, which an attack of the same day cannot raise): how many of the day's triples about
-- it repeat a (relation, tail) that a popular item's entity has
with day_triples as (
    select distinct head, relation, tail from clean.kg where ds = $ds
),

described_before as (
    select distinct head from clean.kg where ds < $ds
),

popularity as (
    select item_id, count(distinct user_id) as users from clean.interactions where ds < $ds group by all
),

ranked as (
    select
        item_id,
        percent_rank() over (order by users) as popularity_rank,
        row_number() over (order by users desc, item_id) as position
    from popularity
),

links as (
    select distinct item_id, entity_id from clean.item_entities where ds <= $ds
),

popular_links as (
    select distinct kg.relation, kg.tail
    from clean.kg as kg
    join links on links.entity_id = kg.head
    join ranked using (item_id)
    where kg.ds < $ds and ranked.position <= $popular_items
),

cold_heads as (
    -- an item nobody took yet is as cold as they come
    select distinct links.entity_id as head
    from links
    left join ranked using (item_id)
    where coalesce(ranked.popularity_rank, 0) < 0.5
),

counted as (
    -- popular_links is distinct on (relation, tail), so the join keeps one row per day's triple
    select day_triples.head, count(popular_links.tail) as copied, count(*) as triples
    from day_triples
    left join popular_links using (relation, tail)
    group by all
),

final as (
    -- $copied_links, $described_before and $cold_only are the score's parts (all true in production); an ablation
    -- switches one off to measure what it adds
    select head, (case when $copied_links then copied else triples end)::double as score
    from counted
    where (not $described_before or head in (select head from described_before))
        and (not $cold_only or head in (select head from cold_heads))
)

select * from final order by score desc, head;
