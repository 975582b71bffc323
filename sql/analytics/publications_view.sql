create or replace view recs.publications as
select * from read_parquet({files});
