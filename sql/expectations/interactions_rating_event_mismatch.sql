-- `rate` events without a rating, and other events with one: a rating belongs to `rate` events only
select source_file, source_line, concat_ws(' ', event, 'rating', coalesce(rating::varchar, 'null')) as detail
from clean.interactions
where ds = $ds and (event = 'rate') <> (rating is not null)
order by source_file, source_line;
