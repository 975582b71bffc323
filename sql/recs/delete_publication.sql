delete from recs.publications where ds = $ds and model = $model;
