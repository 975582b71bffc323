create or replace view ops.runs as
select * from read_parquet({files});
