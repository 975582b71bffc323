select ds, model, run_id from recs.publications order by ds, model;
