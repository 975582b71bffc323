-- the published store: views only; the data lives in Parquet files next to it
create schema if not exists recs;
create schema if not exists ops;
create schema if not exists catalog;
