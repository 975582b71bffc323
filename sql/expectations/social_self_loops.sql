-- edges from a user to the same user (the row contract quarantines them; this guards the clean table)
select source_file, source_line, src_user_id as detail
from clean.social
where ds = $ds and src_user_id = dst_user_id
order by source_file, source_line;
