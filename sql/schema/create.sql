-- gnnrec's warehouse. Every statement is idempotent so any process can run it before it writes.
create schema if not exists raw;
create schema if not exists clean;
create schema if not exists quarantine;
create schema if not exists graph;
create schema if not exists ops;
create schema if not exists recs;

-- raw: rows exactly as landed (every value as text), with where they came from
create table if not exists raw.interactions (
    ds date not null, source_file varchar not null, source_line bigint not null,
    user_id varchar, item_id varchar, event varchar, rating varchar, ts varchar
);
create table if not exists raw.social (
    ds date not null, source_file varchar not null, source_line bigint not null,
    src_user_id varchar, dst_user_id varchar, weight varchar, ts varchar
);
create table if not exists raw.kg (
    ds date not null, source_file varchar not null, source_line bigint not null,
    head varchar, relation varchar, tail varchar
);
create table if not exists raw.item_entities (
    ds date not null, source_file varchar not null, source_line bigint not null,
    item_id varchar, entity_id varchar
);
-- a landed line no reader could split into fields keeps the rule it broke and its text (validation quarantines it)
alter table raw.interactions add column if not exists malformed_rule varchar;
alter table raw.interactions add column if not exists malformed_text varchar;
alter table raw.social add column if not exists malformed_rule varchar;
alter table raw.social add column if not exists malformed_text varchar;
alter table raw.kg add column if not exists malformed_rule varchar;
alter table raw.kg add column if not exists malformed_text varchar;
alter table raw.item_entities add column if not exists malformed_rule varchar;
alter table raw.item_entities add column if not exists malformed_text varchar;

-- clean: typed rows that passed the row contracts
create table if not exists clean.interactions (
    ds date not null, source_file varchar not null, source_line bigint not null,
    user_id varchar not null, item_id varchar not null, event varchar not null, rating double, ts timestamp not null
);
create table if not exists clean.social (
    ds date not null, source_file varchar not null, source_line bigint not null,
    src_user_id varchar not null, dst_user_id varchar not null, weight double, ts timestamp
);
create table if not exists clean.kg (
    ds date not null, source_file varchar not null, source_line bigint not null,
    head varchar not null, relation varchar not null, tail varchar not null
);
create table if not exists clean.item_entities (
    ds date not null, source_file varchar not null, source_line bigint not null,
    item_id varchar not null, entity_id varchar not null
);

-- quarantine: one row per (row, broken rule); `record` is the whole landed row as JSON text
create table if not exists quarantine.interactions (
    ds date not null, source_file varchar not null, source_line bigint,
    column_name varchar, rule varchar not null, value varchar, record varchar
);
create table if not exists quarantine.social (
    ds date not null, source_file varchar not null, source_line bigint,
    column_name varchar, rule varchar not null, value varchar, record varchar
);
create table if not exists quarantine.kg (
    ds date not null, source_file varchar not null, source_line bigint,
    column_name varchar, rule varchar not null, value varchar, record varchar
);
create table if not exists quarantine.item_entities (
    ds date not null, source_file varchar not null, source_line bigint,
    column_name varchar, rule varchar not null, value varchar, record varchar
);

-- graph: external id -> dense index; an id keeps its index forever
create table if not exists graph.user_ids (user_id varchar primary key, user_idx integer not null unique, first_ds date not null);
create table if not exists graph.item_ids (item_id varchar primary key, item_idx integer not null unique, first_ds date not null);
create table if not exists graph.entity_ids (entity_id varchar primary key, entity_idx integer not null unique, first_ds date not null);
create table if not exists graph.relation_ids (relation varchar primary key, relation_idx integer not null unique, first_ds date not null);

-- ops: what was ingested and what ran
create table if not exists ops.ingest_files (
    ds date not null, source varchar not null, path varchar not null, sha256 varchar, size_bytes bigint,
    rows_read bigint, rows_loaded bigint, rows_quarantined bigint,
    missing_columns varchar[], extra_columns varchar[], status varchar not null, error varchar
);
create table if not exists ops.runs (
    run_id varchar primary key, flow varchar not null, ds date not null, model varchar not null, params json,
    status varchar not null, message varchar, started_at timestamp not null, finished_at timestamp
);
-- the dataset-level expectations (Great Expectations) of each run and day: one row per expectation
create table if not exists ops.validation_results (
    run_id varchar not null, ds date not null, source varchar not null, suite varchar not null,
    expectation varchar not null, success boolean not null, observed_value varchar, critical boolean not null
);
create table if not exists ops.metrics (
    run_id varchar not null, metric varchar not null, k integer not null, value double not null
);

-- recs: what downstream services and analysts read
create table if not exists recs.topk (
    ds date not null, model varchar not null, run_id varchar not null,
    user_id varchar not null, rank integer not null, item_id varchar not null, score double not null
);
create table if not exists recs.publications (
    ds date not null, model varchar not null, run_id varchar not null, published_at timestamp not null,
    users bigint not null, rows bigint not null
);
-- recs.latest_topk is created after this file from recs/latest_topk_view.sql, the definition the analysts' store uses

-- ops.runs provenance (issue 5): added in place so warehouses made before it keep their rows
alter table ops.runs add column if not exists inputs_digest varchar;
alter table ops.runs add column if not exists input_files json;
alter table ops.runs add column if not exists code_version varchar;
alter table ops.runs add column if not exists library_versions json;
alter table ops.runs add column if not exists seed bigint;
alter table ops.runs add column if not exists device varchar;
alter table ops.runs add column if not exists stage_seconds json;

-- each day's progress (issue 9), committed with the data of the stage that reached it:
-- ingested -> validated -> accepted | refused; inputs_digest is the day's files when it got there
create table if not exists ops.day_progress (
    ds date primary key, state varchar not null, inputs_digest varchar not null, run_id varchar,
    updated_at timestamp not null
);

-- the evaluation protocol of each figure (issue 10): full, sampled:N, ctr or rating; AUC and RMSE have no k
alter table ops.metrics add column if not exists protocol varchar default 'full';
alter table ops.metrics alter column k drop not null;

-- the Prefect flow run each gnnrec run belongs to (issue 11): several models of one day share one flow run, and each
-- day of a backfill is a flow run of its own under the backfill's; null for a run made outside Prefect
alter table ops.runs add column if not exists flow_run_id varchar;

-- the defence against fake accounts (issue 15): every account first seen on a day and every KG entity given new
-- facts, with its suspicion score and whether it was flagged (replaced each time the day is checked), and the
-- operator's releases, which every later check of the day honours
create table if not exists ops.suspects (
    ds date not null, kind varchar not null, id varchar not null, score double not null,
    flagged boolean not null, released boolean not null
);
create table if not exists ops.releases (
    ds date not null, kind varchar not null, id varchar not null, released_at timestamp not null
);
