select * from ops.runs order by started_at;
