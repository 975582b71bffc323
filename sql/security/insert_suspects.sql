-- the day's scored accounts and entities, staged by the detector
insert into ops.suspects (ds, kind, id, score, flagged, released)
select $ds, kind, id, score, flagged, released from staged_suspects;
