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

final as (
    select day_triples.head, count(popular_links.tail)::double as score
    from day_triples
    semi join described_before using (head)
    semi join cold_heads using (head)
    left join popular_links using (relation, tail)
    group by all
)

select * from final order by score desc, head;
