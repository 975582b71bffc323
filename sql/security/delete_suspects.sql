-- a day's screening is replaced whole each time the day is checked
delete from ops.suspects where ds = $ds;
