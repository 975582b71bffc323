select ds, state
from ops.day_progress
where ds <= $ds
order by ds;
