-- events whose time (UTC) falls before or after the day of the partition they landed in
select source_file, source_line, ts::varchar as detail
from clean.interactions
where ds = $ds and (ts < $ds::timestamp or ts >= $ds::timestamp + interval 1 day)
order by source_file, source_line;
