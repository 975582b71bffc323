create or replace view ops.metrics as
select * from read_parquet({files});
