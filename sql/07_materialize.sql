-- Batch materialization: fs_materialize windows, watermarks, late rows,
-- failures, pg_cron schedules, freshness.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

CREATE TABLE raw.mat_src (doc_id bigint, event_ts timestamptz, a int, b text);
CREATE INDEX ON raw.mat_src (event_ts);
INSERT INTO raw.mat_src
SELECT k, '2026-01-01'::timestamptz + d * interval '1 day', k * 10 + d, 'v' || k
  FROM generate_series(1, 5) k, generate_series(0, 1) d;
SELECT fs_create_feature_view('mv', 'doc', source => 'raw.mat_src'::regclass);
SELECT name, type FROM fstore.features WHERE view_name = 'mv' ORDER BY position;

-- the first run reads everything up to until
SELECT read, written, unchanged, late FROM fs_materialize('mv', until => '2026-01-03');
SELECT * FROM fstore_online.mv ORDER BY doc_id;
SELECT count(*) FROM fstore_offline.mv;
SELECT watermark FROM fstore.view_state s JOIN fstore.feature_views v USING (view_id) WHERE v.name = 'mv';

-- a new day: two keys changed, three repeat their value
INSERT INTO raw.mat_src
SELECT k, '2026-01-04', CASE WHEN k <= 2 THEN -k ELSE k * 10 + 1 END, 'v' || k
  FROM generate_series(1, 5) k;
SELECT read, written, unchanged, late FROM fs_materialize('mv', until => '2026-01-05');
SELECT doc_id, a, event_ts FROM fstore_online.mv ORDER BY doc_id;
-- nothing new: an empty window
SELECT read, written, unchanged, late FROM fs_materialize('mv', until => '2026-01-05');
-- re-running a window is idempotent
SELECT read, written, unchanged, late FROM fs_materialize('mv', since => '-infinity', until => '2026-01-05');
SELECT count(*) FROM fstore_offline.mv;

-- a late source row (before the watermark) is not seen by the next
-- incremental run; re-running its window applies it as late: history only
INSERT INTO raw.mat_src VALUES (1, '2026-01-02 12:00', 999, 'late');
SELECT read, written, unchanged, late FROM fs_materialize('mv', until => '2026-01-06');
SELECT read, written, unchanged, late FROM fs_materialize('mv', since => '2026-01-02', until => '2026-01-03');
SELECT doc_id, a, b, event_ts FROM fstore_offline.mv WHERE doc_id = 1 ORDER BY event_ts;
SELECT doc_id, a FROM fstore_online.mv WHERE doc_id = 1;
-- the watermark never moves back
SELECT watermark FROM fstore.view_state s JOIN fstore.feature_views v USING (view_id) WHERE v.name = 'mv';
SELECT view_name, since, until, read, written, unchanged, late, finished_at >= started_at AS timed
  FROM fstore.materialization_runs WHERE view_name = 'mv' ORDER BY run_id;

-- a failed run changes nothing: no rows, same watermark; it is recorded
-- as failed (sql/13_definitions.sql tests that record)
INSERT INTO raw.mat_src VALUES (6, '2026-01-07', 60, 'ok'), (NULL, '2026-01-07', 1, 'bad');
SELECT t.err($$SELECT fs_materialize('mv', until => '2026-01-08')$$);
SELECT count(*) FROM fstore_online.mv WHERE doc_id = 6;
SELECT status, count(*) FROM fstore.materialization_runs WHERE view_name = 'mv' GROUP BY 1 ORDER BY 1;
SELECT watermark FROM fstore.view_state s JOIN fstore.feature_views v USING (view_id) WHERE v.name = 'mv';
DELETE FROM raw.mat_src WHERE doc_id IS NULL;
SELECT read, written FROM fs_materialize('mv', until => '2026-01-08');

-- a source given as a query over other tables
SELECT fs_create_feature_view('mq', 'doc', source_query => 'SELECT doc_id, event_ts, a * 2 AS a2 FROM raw.mat_src WHERE a > 0;');
SELECT name, type FROM fstore.features WHERE view_name = 'mq';
SELECT read, written, unchanged, late FROM fs_materialize('mq', until => '2026-01-08');
SELECT doc_id, a2 FROM fs_get_many(NULL::fstore_online.mq, ARRAY[1, 3, 6]::bigint[]);

-- a source without an index on its time column gets a notice
CREATE TABLE raw.noidx (doc_id bigint, event_ts timestamptz, a int);
SELECT fs_create_feature_view('mn', 'doc', source => 'raw.noidx'::regclass);

-- errors
SELECT t.err($$SELECT fs_materialize('nosuch')$$);
SELECT t.err($$SELECT fs_materialize(NULL)$$);
SELECT t.err($$SELECT fs_materialize('iv')$$);
SELECT t.err($$SELECT fs_materialize('mv', until => 'infinity')$$);
SELECT t.err($$SELECT fs_materialize('mv', since => '2026-01-05', until => '2026-01-04')$$);
-- the writer's privileges, even for a window with nothing in it
CREATE ROLE fs_nobody;
SET ROLE fs_nobody;
SELECT t.err($$SELECT fs_materialize('mv', since => '2026-01-05', until => '2026-01-05')$$);
RESET ROLE;
DROP ROLE fs_nobody;
SELECT t.err($$SELECT fs_create_feature_view('bad1', 'doc', source => 'raw.mat_src'::regclass, source_query => 'SELECT 1')$$);
SELECT t.err($$SELECT fs_create_feature_view('bad2', 'doc', source_query => 'DELETE FROM raw.mat_src')$$);
SELECT t.err($$SELECT fs_create_feature_view('bad3', 'doc', source_query => 'SELECT doc_id, a FROM raw.mat_src')$$);
SELECT t.err($$SELECT fs_create_feature_view('bad4', 'doc', source_query => 'SELECT 1; DROP TABLE raw.mat_src')$$);
SELECT count(*) FROM raw.mat_src;

-- schedules need pg_cron (the schedules below never fire: February 31)
SELECT t.err($$SELECT fs_schedule_materialize('mv', '*/15 * 31 2 *')$$);
SELECT fs_schedule_materialize('mv', '*/15 * 31 2 *');
CREATE EXTENSION pg_cron;
SELECT fs_schedule_materialize('mv', '*/15 * 31 2 *') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job ORDER BY jobid;
-- scheduling again with another schedule replaces the job when asked to
SELECT t.err($$SELECT fs_schedule_materialize('mv', '0 * 31 2 *')$$);
SELECT fs_schedule_materialize('mv', '0 * 31 2 *', or_replace => true) > 0 AS scheduled;
SELECT jobname, schedule FROM cron.job ORDER BY jobid;
SELECT fs_unschedule_materialize('mv');
SELECT t.err($$SELECT fs_unschedule_materialize('mv')$$);
SELECT t.err($$SELECT fs_schedule_materialize('iv', '0 0 31 2 *')$$);
SELECT t.err($$SELECT fs_schedule_materialize('nosuch', '0 0 31 2 *')$$);
SELECT t.err($$SELECT fs_schedule_materialize('mv', 'not a schedule')$$);
SELECT fs_create_feature_view('a_feature_view_with_a_name_of_fifty_bytes_in_all', 'doc',
                              source => 'raw.mat_src'::regclass);
SELECT t.err($$SELECT fs_schedule_materialize('a_feature_view_with_a_name_of_fifty_bytes_in_all', '0 0 31 2 *')$$);
SELECT fs_drop_feature_view('a_feature_view_with_a_name_of_fifty_bytes_in_all');
-- dropping a view drops its schedule
SELECT fs_schedule_materialize('mq', '0 0 31 2 *') > 0 AS scheduled;
SELECT fs_drop_feature_view('mq');
SELECT count(*) FROM cron.job;
DROP EXTENSION pg_cron;

-- freshness: lag, targets, stale views
SELECT view_name, last_event_ts, watermark, last_materialization IS NOT NULL AS materialized,
       freshness_target, stale
  FROM fstore.freshness WHERE view_name IN ('mv', 'mn') ORDER BY view_name;
SELECT fs_set_freshness_target('mv', interval '1 hour');
SELECT view_name, stale FROM fstore.freshness WHERE view_name = 'mv';
SELECT view_name, last_event_ts, freshness_target FROM fs_check_freshness() WHERE view_name = 'mv';
SELECT * FROM fs_write('mv', ARRAY[ROW(1, 1, 'now', now())]::fstore_online.mv[]);
SELECT view_name, stale, lag < interval '1 minute' AS recent FROM fstore.freshness WHERE view_name = 'mv';
SELECT count(*) FROM fs_check_freshness() WHERE view_name = 'mv';
SELECT fs_set_freshness_target('mv', NULL);
SELECT t.err($$SELECT fs_set_freshness_target('mv', interval '-1 hour')$$);
SELECT t.err($$SELECT fs_set_freshness_target('nosuch', interval '1 hour')$$);
-- a target on a view never written makes it stale
SELECT fs_set_freshness_target('mn', interval '1 day');
SELECT view_name, stale FROM fs_check_freshness() f JOIN fstore.freshness USING (view_name) WHERE view_name = 'mn';
