-- Definitions that change safely (issue 13): fs_alter_feature_view,
-- or_replace on the create functions and schedules, lookback on
-- fs_materialize, failed runs recorded, fstore.progress.
\set SHOW_CONTEXT never
SET timezone = 'UTC';
CREATE SCHEMA d11;
-- queues are drained by fs_stream_apply below
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone();

-- ---------------------------------------------------------------------------
-- 1. or_replace on entities
-- ---------------------------------------------------------------------------
SELECT fs_create_entity('acct', 'acct_id bigint');
SELECT t.err($$SELECT fs_create_entity('acct', 'acct_id bigint')$$);
-- identical: a no-op
SELECT fs_create_entity('acct', 'acct_id bigint', or_replace => true);
SELECT name, key_columns, key_types FROM fstore.entities WHERE name = 'acct';
-- other key columns: refused, nothing changed
SELECT t.err($$SELECT fs_create_entity('acct', 'acct_id int', or_replace => true)$$);
SELECT t.err($$SELECT fs_create_entity('acct', 'acct_id bigint, region text', or_replace => true)$$);
SELECT name, key_columns, key_types FROM fstore.entities WHERE name = 'acct';
-- a composite key, twice
SELECT fs_create_entity('pair', 'a bigint, b text');
SELECT fs_create_entity('pair', 'a bigint, b text', or_replace => true);
SELECT t.err($$SELECT fs_create_entity('pair', 'b text, a bigint', or_replace => true)$$);
SELECT key_columns FROM fstore.entities WHERE name = 'pair';

-- ---------------------------------------------------------------------------
-- 2. fs_alter_feature_view
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('acct_stats', 'acct', 'spend real, visits int, tier text', ttl => '30 days');
SELECT view_id AS acct_stats_id FROM fstore.feature_views WHERE name = 'acct_stats' \gset
SELECT * FROM fs_write('acct_stats', ARRAY[
    (1, 10.5, 3, 'gold', now() - interval '2 hours'),
    (2, 1.25, 1, 'free', now() - interval '2 hours')]::fstore_online.acct_stats[]);
SELECT * FROM fs_write('acct_stats', ARRAY[
    (1, 11.5, 4, 'gold', now() - interval '1 hour')]::fstore_online.acct_stats[]);
-- read once, so the hot cache holds the rows
SELECT acct_id, spend, visits, tier FROM fs_get_many(NULL::fstore_online.acct_stats, ARRAY[1, 2]::bigint[]);
SELECT fs_create_feature_service('acct_svc', ARRAY['acct_stats.spend', 'acct_stats.tier AS plan']);

-- bad input: nothing changes
SELECT t.err($$SELECT fs_alter_feature_view('nosuch', ttl => '1 day')$$);
SELECT t.err($$SELECT fs_alter_feature_view(NULL, ttl => '1 day')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', drop_features => ARRAY['acct_id'])$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', drop_features => ARRAY['event_ts'])$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', drop_features => ARRAY['nope'])$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', drop_features => ARRAY[NULL])$$);
-- a feature a service uses: 2BP01, naming the services
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', drop_features => ARRAY['visits', 'tier'])$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', drop_features => ARRAY['spend', 'visits', 'tier'])$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', add_features => 'visits int')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', add_features => 'acct_id int')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', add_features => 'created_at int')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', add_features => 'x int, x text')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', add_features => 'x nosuchtype')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', ttl => '-1 day')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', ttl => '1 day', clear_ttl => true)$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', rename_to => 'acct_svc')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', rename_to => 'Bad Name')$$);
SELECT fs_create_feature_view('acct_other', 'acct', 'z int');
SELECT t.err($$SELECT fs_alter_feature_view('acct_stats', rename_to => 'acct_other')$$);
SELECT position, name, type FROM fstore.features WHERE view_name = 'acct_stats' ORDER BY position;
SELECT ttl FROM fstore.feature_views WHERE name = 'acct_stats';

-- add two features, drop one, change the ttl, in one call
SELECT fs_alter_feature_view('acct_stats', add_features => 'churn_p float8, segment text',
                             drop_features => ARRAY['visits'], ttl => '60 days');
SELECT position, name, type FROM fstore.features WHERE view_name = 'acct_stats' ORDER BY position;
SELECT ttl FROM fstore.feature_views WHERE name = 'acct_stats';
-- same view, same id; online values kept, new features NULL until written
SELECT view_id = :acct_stats_id AS same_id FROM fstore.feature_views WHERE name = 'acct_stats';
SELECT acct_id, spend, tier, churn_p, segment FROM fs_get_many(NULL::fstore_online.acct_stats, ARRAY[1, 2]::bigint[]);
-- history kept (the dropped feature's history goes with it)
SELECT acct_id, spend, tier, churn_p FROM fstore_offline.acct_stats ORDER BY acct_id, event_ts;
SELECT count(*) FROM information_schema.columns
 WHERE table_schema IN ('fstore_online', 'fstore_offline', 'fstore_stream')
   AND table_name = 'acct_stats' AND column_name = 'visits';
-- writes see the new shape; reads are not served stale cache entries
SELECT * FROM fs_write('acct_stats', ARRAY[
    ROW(1, 12.5, 'gold', now() - interval '30 minutes', 0.25, 'smb')]::fstore_online.acct_stats[]);
SELECT acct_id, spend, churn_p, segment FROM fs_get_many(NULL::fstore_online.acct_stats, ARRAY[1]::bigint[]);
-- the stream queue has the new columns too
SELECT attname FROM pg_attribute WHERE attrelid = 'fstore_stream.acct_stats'::regclass
   AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
-- the service still works
SELECT * FROM fs_get_many(NULL::fstore_online.acct_svc, ARRAY[1, 2]::bigint[]);

-- transactional: a rolled-back change leaves nothing behind
BEGIN;
SELECT fs_alter_feature_view('acct_stats', add_features => 'tmp int', clear_ttl => true);
SELECT count(*) FROM fstore.features WHERE view_name = 'acct_stats';
ROLLBACK;
SELECT count(*) FROM fstore.features WHERE view_name = 'acct_stats';
SELECT ttl FROM fstore.feature_views WHERE name = 'acct_stats';
SELECT count(*) FROM pg_attribute WHERE attrelid = 'fstore_online.acct_stats'::regclass AND attname = 'tmp';

-- clearing the ttl
SELECT fs_alter_feature_view('acct_stats', clear_ttl => true);
SELECT ttl FROM fstore.feature_views WHERE name = 'acct_stats';

-- rename: tables, row type, queue, catalogs, services follow
SELECT fs_alter_feature_view('acct_stats', rename_to => 'account_stats');
SELECT name, view_id = :acct_stats_id AS same_id FROM fstore.feature_views WHERE name LIKE 'acc%' ORDER BY name;
SELECT to_regclass('fstore_online.acct_stats') IS NULL AS old_gone,
       to_regclass('fstore_online.account_stats') IS NOT NULL AS online,
       to_regclass('fstore_offline.account_stats') IS NOT NULL AS offline,
       to_regclass('fstore_stream.account_stats') IS NOT NULL AS queue,
       to_regclass('fstore_online.account_stats_pkey') IS NOT NULL AS pkey;
SELECT DISTINCT view_name FROM fstore.features WHERE view_name LIKE 'acc%stats';
SELECT service, view_name, feature, output_name FROM fstore.service_features WHERE service = 'acct_svc' ORDER BY position;
SELECT * FROM fs_get_many(NULL::fstore_online.acct_svc, ARRAY[1, 2]::bigint[]);
SELECT acct_id, spend, segment FROM fs_get_many(NULL::fstore_online.account_stats, ARRAY[1]::bigint[]);
SELECT * FROM fs_write('account_stats', ARRAY[
    ROW(2, 2.5, 'free', now() - interval '10 minutes', 0.5, 'consumer')]::fstore_online.account_stats[]);
INSERT INTO fstore_stream.account_stats (acct_id, spend, tier, event_ts, churn_p, segment)
VALUES (2, 3.5, 'free', now() - interval '5 minutes', 0.75, 'consumer');
SELECT events, applied FROM fs_stream_apply('account_stats');
SELECT * FROM fs_get_many(NULL::fstore_online.acct_svc, ARRAY[2]::bigint[]);
-- the old name is free again
SELECT fs_create_feature_view('acct_stats', 'acct', 'fresh int');
SELECT fs_drop_feature_view('acct_stats');

-- only the owner changes a view
CREATE ROLE d11_other;
GRANT INSERT, UPDATE, DELETE ON fstore.entities, fstore.feature_views, fstore.features TO d11_other;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fstore TO d11_other;
SET ROLE d11_other;
SELECT t.err($$SELECT fs_alter_feature_view('account_stats', clear_ttl => true)$$);
SELECT t.err($$SELECT fstore._view_changed('account_stats')$$);
RESET ROLE;
SELECT ttl FROM fstore.feature_views WHERE name = 'account_stats';
REVOKE ALL ON fstore.entities, fstore.feature_views, fstore.features FROM d11_other;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA fstore FROM d11_other;
DROP ROLE d11_other;

-- a new ttl is seen at once: the hot cache drops the view's entries
SELECT fs_create_feature_view('acct_ttl', 'acct', 'v int', ttl => '1 day');
SELECT * FROM fs_write('acct_ttl', ARRAY[(1, 7, now() - interval '2 days')]::fstore_online.acct_ttl[]);
SELECT acct_id, v FROM fs_get_many(NULL::fstore_online.acct_ttl, ARRAY[1]::bigint[]);
SELECT acct_id, v FROM fs_get_many(NULL::fstore_online.acct_ttl, ARRAY[1]::bigint[]);
SELECT cache_hits, cache_misses FROM fstore.stats WHERE view_name = 'acct_ttl';
SELECT fs_alter_feature_view('acct_ttl', ttl => '3 days');
SELECT acct_id, v FROM fs_get_many(NULL::fstore_online.acct_ttl, ARRAY[1]::bigint[]);
SELECT fs_alter_feature_view('acct_ttl', ttl => '1 hour');
SELECT acct_id, v FROM fs_get_many(NULL::fstore_online.acct_ttl, ARRAY[1]::bigint[]);
SELECT cache_hits, cache_misses FROM fstore.stats WHERE view_name = 'acct_ttl';
SELECT fs_drop_feature_view('acct_ttl');

-- a view with a source: new features must be in it; a new source is checked
CREATE TABLE d11.usage (acct_id bigint, ts timestamptz, minutes int, calls int);
CREATE INDEX ON d11.usage (ts);
SELECT fs_create_feature_view('acct_usage', 'acct', source => 'd11.usage'::regclass,
                              timestamp_column => 'ts', features => 'minutes int');
SELECT t.err($$SELECT fs_alter_feature_view('acct_usage', add_features => 'sms int')$$);
SELECT fs_alter_feature_view('acct_usage', add_features => 'calls int');
CREATE TABLE d11.usage2 (acct_id bigint, at timestamptz, minutes int, calls int);
SELECT t.err($$SELECT fs_alter_feature_view('acct_usage', source => 'd11.usage2'::regclass)$$);
SELECT fs_alter_feature_view('acct_usage', source => 'd11.usage2'::regclass, timestamp_column => 'at');
SELECT source, source_query, timestamp_column FROM fstore.feature_views WHERE name = 'acct_usage';
SELECT fs_alter_feature_view('acct_usage', source_query => 'SELECT acct_id, ts AS at, minutes, calls FROM d11.usage');
SELECT source, source_query, timestamp_column FROM fstore.feature_views WHERE name = 'acct_usage';
SELECT t.err($$SELECT fs_alter_feature_view('acct_usage', source => 'd11.usage'::regclass, source_query => 'SELECT 1')$$);
SELECT t.err($$SELECT fs_alter_feature_view('acct_usage', clear_source => true, source => 'd11.usage'::regclass)$$);
SELECT fs_alter_feature_view('acct_usage', clear_source => true);
SELECT source, source_query FROM fstore.feature_views WHERE name = 'acct_usage';

-- ---------------------------------------------------------------------------
-- 3. or_replace on feature views
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('acct_flags', 'acct', 'fraud bool, vip bool', ttl => '7 days');
SELECT view_id AS flags_id FROM fstore.feature_views WHERE name = 'acct_flags' \gset
SELECT * FROM fs_write('acct_flags', ARRAY[(1, true, false, now() - interval '1 hour')]::fstore_online.acct_flags[]);
SELECT t.err($$SELECT fs_create_feature_view('acct_flags', 'acct', 'fraud bool, vip bool', ttl => '7 days')$$);
-- identical: a no-op (the catalog rows are not even rewritten)
SELECT xmin AS flags_xmin FROM fstore.feature_views WHERE name = 'acct_flags' \gset
SELECT fs_create_feature_view('acct_flags', 'acct', 'fraud bool, vip bool', ttl => '7 days', or_replace => true);
SELECT xmin = :'flags_xmin'::xid AS untouched FROM fstore.feature_views WHERE name = 'acct_flags';
-- compatible: a feature added, one dropped, the ttl changed; values kept
SELECT fs_create_feature_view('acct_flags', 'acct', 'fraud bool, risky bool', ttl => '14 days', or_replace => true);
SELECT position, name, type FROM fstore.features WHERE view_name = 'acct_flags' ORDER BY position;
SELECT view_id = :flags_id AS same_id, ttl FROM fstore.feature_views WHERE name = 'acct_flags';
SELECT acct_id, fraud, risky FROM fs_get_many(NULL::fstore_online.acct_flags, ARRAY[1]::bigint[]);
-- no ttl in the definition: the ttl is cleared
SELECT fs_create_feature_view('acct_flags', 'acct', 'fraud bool, risky bool', or_replace => true);
SELECT ttl FROM fstore.feature_views WHERE name = 'acct_flags';
-- incompatible: another entity, another type; nothing changes
SELECT t.err($$SELECT fs_create_feature_view('acct_flags', 'pair', 'fraud bool, risky bool', or_replace => true)$$);
SELECT t.err($$SELECT fs_create_feature_view('acct_flags', 'acct', 'fraud int, risky bool', or_replace => true)$$);
SELECT t.err($$SELECT fs_create_feature_view('acct_flags', 'acct', 'fraud bool, risky bool, vip2 bool', source => 'd11.usage'::regclass, or_replace => true)$$);
SELECT position, name, type FROM fstore.features WHERE view_name = 'acct_flags' ORDER BY position;
SELECT entity, source FROM fstore.feature_views WHERE name = 'acct_flags';
-- from a source: the definition file can be applied twice
SELECT fs_create_feature_view('acct_usage2', 'acct', source => 'd11.usage'::regclass, timestamp_column => 'ts', or_replace => true);
SELECT fs_create_feature_view('acct_usage2', 'acct', source => 'd11.usage'::regclass, timestamp_column => 'ts', or_replace => true);
SELECT name, type FROM fstore.features WHERE view_name = 'acct_usage2' ORDER BY position;

-- ---------------------------------------------------------------------------
-- 4. lookback: late batches
-- ---------------------------------------------------------------------------
CREATE TABLE d11.daily (acct_id bigint, event_ts timestamptz, score int);
CREATE INDEX ON d11.daily (event_ts);
SELECT fs_create_feature_view('acct_daily', 'acct', source => 'd11.daily'::regclass);
INSERT INTO d11.daily VALUES (1, '2026-03-01 00:00', 10), (2, '2026-03-01 00:00', 20);
SELECT read, written, unchanged, late FROM fs_materialize('acct_daily', until => '2026-03-02 06:00');
-- the batch of 2026-03-02, stamped at midnight, is loaded after the run
-- that moved the watermark to 06:00: an incremental run skips it
INSERT INTO d11.daily VALUES (1, '2026-03-02 00:00', 11), (3, '2026-03-02 00:00', 30);
SELECT read, written, unchanged, late FROM fs_materialize('acct_daily', until => '2026-03-02 12:00');
SELECT acct_id, score FROM fs_get_many(NULL::fstore_online.acct_daily, ARRAY[1, 3]::bigint[]);
-- with a lookback of a day the window is (2026-03-01 12:00, 2026-03-03]:
-- the late batch is read and written
SELECT read, written, unchanged, late FROM fs_materialize('acct_daily', until => '2026-03-03', lookback => '1 day');
SELECT acct_id, score FROM fs_get_many(NULL::fstore_online.acct_daily, ARRAY[1, 3]::bigint[]);
-- the overlap again: the watermark is 2026-03-03, so the window is
-- (2026-03-01 00:00, 2026-03-04]: the two rows of 2026-03-02 are read
-- again, and change nothing

SELECT read, written, unchanged, late FROM fs_materialize('acct_daily', until => '2026-03-04', lookback => '2 days');
SELECT since, until, read, written, unchanged, lookback FROM fstore.materialization_runs
 WHERE view_name = 'acct_daily' ORDER BY run_id;
-- with an explicit since, the lookback is taken from it
SELECT read, unchanged FROM fs_materialize('acct_daily', since => '2026-03-02 00:00', until => '2026-03-04', lookback => '1 hour');
-- a zero lookback is no lookback
SELECT read FROM fs_materialize('acct_daily', until => '2026-03-04', lookback => '0');
-- bad input
SELECT t.err($$SELECT fs_materialize('acct_daily', lookback => '-1 hour')$$);
SELECT t.err($$SELECT fs_materialize('acct_daily', lookback => '1 day -25 hours')$$);
SELECT t.err($$SELECT fs_materialize('acct_daily', lookback => 'infinity')$$);
SELECT count(*) FROM fstore.materialization_runs WHERE view_name = 'acct_daily';

-- ---------------------------------------------------------------------------
-- 5. Failed runs are recorded, and show
-- ---------------------------------------------------------------------------
SELECT fs_set_freshness_target('acct_daily', '1000 years');
SELECT view_name, failing, last_failure IS NULL AS no_failure, last_error FROM fstore.freshness WHERE view_name = 'acct_daily';
ALTER TABLE d11.daily RENAME TO daily_gone;
-- the run fails; its record outlives the failing statement
SELECT t.err($$SELECT fs_materialize('acct_daily', until => '2026-03-05')$$);
SELECT since, until, read, status, error, sqlstate, lookback FROM fstore.materialization_runs
 WHERE view_name = 'acct_daily' AND status = 'failed';
-- and the rollback of the caller's transaction
BEGIN;
SELECT * FROM fs_materialize('acct_daily', until => '2026-03-06', lookback => '1 hour');
ROLLBACK;
SELECT until, status, sqlstate, lookback FROM fstore.materialization_runs
 WHERE view_name = 'acct_daily' AND status = 'failed' ORDER BY run_id;
-- nothing else of the failed runs is left: same watermark
SELECT watermark FROM fstore.view_state WHERE view_id = (SELECT view_id FROM fstore.feature_views WHERE name = 'acct_daily');
SELECT view_name, failing, last_failure IS NOT NULL AS has_failure, last_error,
       last_materialization < last_failure AS after_last_success
  FROM fstore.freshness WHERE view_name = 'acct_daily';
SELECT view_name, problem, last_error FROM fs_check_freshness() WHERE view_name = 'acct_daily';
-- a successful run inside a transaction that aborts leaves no record
ALTER TABLE d11.daily_gone RENAME TO daily;
BEGIN;
SELECT read FROM fs_materialize('acct_daily', until => '2026-03-05');
ROLLBACK;
SELECT failing FROM fstore.freshness WHERE view_name = 'acct_daily';
-- the next good run clears the alarm (the failure stays in the history)
SELECT read FROM fs_materialize('acct_daily', until => '2026-03-05');
SELECT failing, last_error FROM fstore.freshness WHERE view_name = 'acct_daily';
SELECT count(*) FROM fs_check_freshness() WHERE view_name = 'acct_daily';
SELECT status, count(*) FROM fstore.materialization_runs WHERE view_name = 'acct_daily' GROUP BY 1 ORDER BY 1;
-- errors before a run starts are not runs
SELECT t.err($$SELECT fs_materialize('acct_flags')$$);
SELECT count(*) FROM fstore.materialization_runs WHERE view_name = 'acct_flags';
-- a failure of a view of the same name, dropped since, is not the new view's
ALTER TABLE d11.daily RENAME TO daily_gone;
SELECT t.err($$SELECT fs_materialize('acct_daily', until => '2026-03-06')$$);
ALTER TABLE d11.daily_gone RENAME TO daily;
SELECT fs_drop_feature_view('acct_daily');
SELECT count(*) FROM fstore.materialization_runs WHERE view_name = 'acct_daily';
SELECT fs_create_feature_view('acct_daily', 'acct', source => 'd11.daily'::regclass);
SELECT failing, last_failure FROM fstore.freshness WHERE view_name = 'acct_daily';

-- ---------------------------------------------------------------------------
-- 6. fstore.progress
-- ---------------------------------------------------------------------------
SELECT count(*) FROM fstore.progress;
-- a source that looks at fstore.progress while it is read: the run
-- reports itself
SELECT fs_create_feature_view('acct_seen', 'acct', source_query => $q$
    SELECT d.acct_id, d.event_ts,
           (SELECT p.kind || '/' || p.view_name || '/' || p.phase || '/' || p.rows_done
              FROM fstore.progress p WHERE p.pid = pg_catalog.pg_backend_pid()) AS seen
      FROM d11.daily d$q$);
SELECT read FROM fs_materialize('acct_seen', until => '2026-03-05');
SELECT acct_id, seen FROM fs_get_many(NULL::fstore_online.acct_seen, ARRAY[1]::bigint[]);
SELECT count(*) FROM fstore.progress;
-- a training set whose entity query looks at it
SELECT fs_create_training_set('d11_ts', $q$
    SELECT a.acct_id, '2026-03-05'::timestamptz AS event_ts,
           (SELECT p.kind || '/' || p.view_name || '/' || p.phase
              FROM fstore.progress p WHERE p.pid = pg_catalog.pg_backend_pid()) AS seen
      FROM (VALUES (1::bigint), (2)) a(acct_id)$q$,
    ARRAY['acct_seen.seen AS m'], strategy => 'lateral');
SELECT acct_id, seen FROM fstore_training.d11_ts ORDER BY acct_id;
SELECT count(*) FROM fstore.progress;
-- a failed build ends its report
SELECT t.err($$SELECT fs_create_training_set('d11_ts2', 'SELECT d.acct_id / 0 AS acct_id, d.event_ts FROM d11.daily d', ARRAY['acct_seen.seen'])$$);
SELECT count(*) FROM fstore.progress;
SELECT fs_drop_training_set('d11_ts');
-- a stream batch: a row trigger on the online table notes what the
-- session reports while the batch applies
CREATE TABLE d11.seen (what text);
CREATE FUNCTION d11.note_progress() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO d11.seen
    SELECT p.kind || '/' || p.view_name || '/' || p.phase || '/' || p.rows_done || '/' || p.rows_total
      FROM fstore.progress p WHERE p.pid = pg_catalog.pg_backend_pid();
    RETURN NEW;
END
$f$;
CREATE TRIGGER note BEFORE INSERT ON fstore_online.acct_flags
    FOR EACH ROW EXECUTE FUNCTION d11.note_progress();
INSERT INTO fstore_stream.acct_flags (acct_id, fraud, risky, event_ts)
SELECT g, false, true, '2026-03-01' FROM generate_series(2, 4) g;
SELECT events, applied FROM fs_stream_apply('acct_flags');
SELECT what, count(*) FROM d11.seen GROUP BY 1;
SELECT count(*) FROM fstore.progress;
DROP TRIGGER note ON fstore_online.acct_flags;

-- ---------------------------------------------------------------------------
-- 7. Schedules: lookback and or_replace
-- ---------------------------------------------------------------------------
CREATE EXTENSION pg_cron;
SELECT fs_schedule_materialize('acct_usage2', '0 0 31 2 *', lookback => '1 day') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job ORDER BY jobid;
-- identical: the same job
SELECT jobid AS job FROM cron.job WHERE jobname = 'fstore_materialize_acct_usage2' \gset
SELECT fs_schedule_materialize('acct_usage2', '0 0 31 2 *', lookback => '1 day') = :job AS same_job;
-- another schedule or lookback: refused unless or_replace
SELECT t.err($$SELECT fs_schedule_materialize('acct_usage2', '0 1 31 2 *', lookback => '1 day')$$);
SELECT t.err($$SELECT fs_schedule_materialize('acct_usage2', '0 0 31 2 *')$$);
SELECT t.err($$SELECT fs_schedule_materialize('acct_usage2', '0 0 31 2 *', lookback => '-1 day')$$);
SELECT fs_schedule_materialize('acct_usage2', '0 1 31 2 *', lookback => '2 days', or_replace => true) > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job WHERE jobname = 'fstore_materialize_acct_usage2';
-- the job's command runs (the lookback applies)
SELECT read FROM fs_materialize('acct_usage2', until => '2026-03-01 12:00');
INSERT INTO d11.usage VALUES (1, '2026-03-01 06:00', 5, 1);
SELECT command AS cmd FROM cron.job WHERE jobname = 'fstore_materialize_acct_usage2' \gset
SELECT read, written FROM (:cmd) r;
-- a renamed view takes its job along
SELECT fs_alter_feature_view('acct_usage2', rename_to => 'acct_usage3');
SELECT jobname, schedule, command FROM cron.job WHERE jobname LIKE 'fstore_materialize_acct_usage%';
SELECT t.err($$SELECT fs_alter_feature_view('acct_usage3', rename_to => 'a_feature_view_with_a_name_of_fifty_bytes_in_all')$$);
SELECT fs_drop_feature_view('acct_usage3');
SELECT count(*) FROM cron.job;
DROP EXTENSION pg_cron;

ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
