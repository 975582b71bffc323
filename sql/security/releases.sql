-- the accounts and entities an operator released on $ds
select distinct kind, id from ops.releases where ds = $ds order by kind, id;
