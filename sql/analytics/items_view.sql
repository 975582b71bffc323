-- the item catalog: every item and the first day it was seen (an item is in day D's catalog from first_ds on)
create or replace view catalog.items as
select * from read_parquet({files});
