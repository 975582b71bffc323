select * from recs.publications order by ds, model;
