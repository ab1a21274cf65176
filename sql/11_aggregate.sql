-- Aggregation views (docs/aggregations.md): tiles of partial aggregates,
-- windows at tile granularity, ingestion by fs_write, the stream queue and
-- fs_materialize, online reads that slide, training sets from the same
-- tiles, bad input.
-- Times are relative to t.agg_t0(): a tile boundary two days ago, so that
-- every value below is hand-computed and independent of when it runs.
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone() AS workers;

-- (t0 is read once: a minute boundary passing during the test moves nothing)
CREATE TABLE t.agg_clock AS
SELECT date_bin('1 minute', now(), '1970-01-01 00:00:00+00') - interval '2 days' AS t0;
CREATE FUNCTION t.agg_t0() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT t0 FROM t.agg_clock
$$;
-- minutes after t0
CREATE FUNCTION t.m(float8) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT t.agg_t0() + make_interval(secs => $1 * 60)
$$;

SELECT fs_create_entity('ad', 'doc_id bigint');
SELECT fs_create_aggregation_view('ad_act', 'ad',
    events => 'clicks int, dwell real, user_id bigint',
    aggregations => ARRAY[
        'count(*) OVER 10 minutes AS opens_10m',
        'count(*) OVER 1 hour AS opens_1h',
        'sum(clicks) OVER 1 hour AS clicks_1h',
        'avg(dwell) OVER 1 day AS dwell_1d',
        'max(dwell) OVER 1 hour AS dwell_max_1h',
        'min(clicks) OVER 1 day AS clicks_min_1d',
        'count(dwell) OVER 1 hour AS dwells_1h',
        'count(DISTINCT user_id) OVER 1 day AS users_1d'],
    granularity => '1 minute', retention => '3 days');

-- what was made
SELECT name, func, arg, window_size, type FROM fstore.aggregations WHERE view_name = 'ad_act' ORDER BY position;
SELECT granularity, max_window, retention, max_future FROM fstore.aggregation_views WHERE name = 'ad_act';
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = 'ad_act' ORDER BY n.nspname;

-- events: at t0 exactly (a tile edge), at t0 + 59.999 s (same tile), at
-- t0 + 60 s (next tile), NULL dwell and clicks (ignored by sum, avg, max,
-- count(dwell); counted by count(*))
SELECT * FROM fs_write('ad_act', ARRAY[
    ROW(1, 2, 1.5, 100, t.m(0)),
    ROW(1, 3, 2.5, 101, t.m(0.99999)),
    ROW(1, 5, 4.0, 100, t.m(1)),
    ROW(1, NULL, NULL, 102, t.m(1.5)),
    ROW(2, 7, 0.5, 200, t.m(30))
]::fstore_stream.ad_act[]);
SELECT doc_id, tile_start - t.agg_t0() AS tile, fs_n FROM fstore_offline.ad_act ORDER BY 1, 2;

-- a read at T covers the tiles with tile_start in (T - window, T]
CREATE FUNCTION t.ad_at(minutes float8, VARIADIC keys bigint[])
RETURNS SETOF fstore_online.ad_act LANGUAGE sql AS $$
    SELECT * FROM fs_get_many_at(NULL::fstore_online.ad_act, keys, t.m(minutes))
$$;
-- just before the first tile: nothing
SELECT doc_id, opens_10m, opens_1h, clicks_1h, dwell_1d, dwell_max_1h, clicks_min_1d, dwells_1h, users_1d
  FROM t.ad_at(-0.0001, 1);
-- at t0: the whole first tile (both of its events; tile granularity)
SELECT doc_id, opens_10m, opens_1h, clicks_1h, dwell_1d, dwell_max_1h, clicks_min_1d, dwells_1h, users_1d
  FROM t.ad_at(0, 1);
-- at t0 + 1 min: the second tile too
SELECT doc_id, opens_10m, opens_1h, clicks_1h, dwell_1d, dwell_max_1h, clicks_min_1d, dwells_1h, users_1d
  FROM t.ad_at(1, 1);
-- the 10-minute window: the first tile until t0 + 10 min (excluded at exactly 10 min)
SELECT m, (SELECT opens_10m FROM t.ad_at(m, 1)) FROM unnest(ARRAY[9.9999, 10, 10.9999, 11]) m;
-- the hour window slides down: t0 + 59.99 min, t0 + 60 min, t0 + 61 min
SELECT m, r.opens_1h, r.clicks_1h, r.dwell_max_1h, r.dwells_1h, r.dwell_1d, r.users_1d
  FROM unnest(ARRAY[59.9999, 60, 61]) m, t.ad_at(m, 1) r;
-- a day later everything is gone: counts 0, the others NULL, event_ts NULL
SELECT doc_id, opens_1h, clicks_1h, dwell_1d, users_1d, event_ts FROM t.ad_at(24 * 60 + 2, 1);
-- keys: order kept, duplicates repeated, unknown keys zero, NULL keys NULL
SELECT doc_id, opens_1h, clicks_1h FROM t.ad_at(30, 2, 1, 99, NULL, 2);

-- late events update the tile they belong to
SELECT * FROM fs_write('ad_act', ARRAY[ROW(1, 10, 8.0, 103, t.m(0.5))]::fstore_stream.ad_act[]);
SELECT opens_1h, clicks_1h, dwell_max_1h, users_1d FROM t.ad_at(1, 1);
SELECT doc_id, tile_start - t.agg_t0() AS tile, fs_n FROM fstore_offline.ad_act ORDER BY 1, 2;

-- events older than every window: kept for training sets (retention), in
-- no online window of now
SELECT * FROM fs_write('ad_act', ARRAY[ROW(3, 1, 1.0, 1, now() - interval '2 days 1 hour')]::fstore_stream.ad_act[]);
SELECT doc_id, opens_1h, clicks_1h, users_1d, event_ts FROM fs_get_many(NULL::fstore_online.ad_act, ARRAY[3]::bigint[]);
-- older than the longest window plus the retention: dropped (late)
SELECT * FROM fs_write('ad_act', ARRAY[ROW(3, 1, 1.0, 1, now() - interval '4 days 1 minute')]::fstore_stream.ad_act[]);
SELECT count(*) FROM fstore_offline.ad_act WHERE doc_id = 3;

-- online at now(): the window of the current tile (one transaction: one now())
BEGIN;
SELECT * FROM fs_write('ad_act', ARRAY[ROW(4, 1, 1.0, 1, now()), ROW(4, 2, 3.0, 2, now() - interval '59 minutes')]::fstore_stream.ad_act[]);
SELECT doc_id, opens_10m, opens_1h, clicks_1h, dwell_1d, users_1d, event_ts = now() AS newest
  FROM fs_get_many(NULL::fstore_online.ad_act, ARRAY[4, 5]::bigint[]);
SELECT doc_id, opens_10m, opens_1h FROM fstore_online.ad_act WHERE doc_id = 4;
SELECT length(fs_get_many_packed(NULL::fstore_online.ad_act, ARRAY[4, NULL, 5]::bigint[])) > 0 AS packed;
COMMIT;

-- the stream path: the queue's events leave it in the statement that adds
-- them to the tiles; bad ones become dead letters
INSERT INTO fstore_stream.ad_act VALUES
    (5, 1, 1.0, 1, t.m(0)), (5, 1, 2.0, 2, t.m(0.5)), (5, 1, 3.0, 3, t.m(2)),
    (5, 1, 1.0, 1, NULL), (NULL, 1, 1.0, 1, t.m(0)), (5, 1, 1.0, 1, 'infinity'),
    (5, 1, 1.0, 1, now() + interval '1 hour'),
    (5, 1, 1.0, 1, now() - interval '5 days');
SELECT * FROM fs_stream_apply('ad_act', 3);
SELECT count(*) AS queued FROM fstore_stream.ad_act;
SELECT * FROM fs_stream_apply('ad_act');
SELECT count(*) AS queued FROM fstore_stream.ad_act;
SELECT * FROM fs_stream_apply('ad_act');
SELECT fs_stream_wait('ad_act', '1 second') AS drained;
SELECT error, sqlstate, event->>'doc_id' AS doc_id FROM fstore.dead_letters WHERE view_name = 'ad_act' ORDER BY id;
SELECT opens_1h, clicks_1h, dwell_max_1h FROM t.ad_at(2, 5);

-- bad input for fs_write: nothing of the call is applied
SELECT t.err($$SELECT fs_write('ad_act', ARRAY[ROW(6, 1, 1.0, 1, now()), ROW(6, 1, 1.0, 1, NULL)]::fstore_stream.ad_act[])$$);
SELECT t.err($$SELECT fs_write('ad_act', ARRAY[ROW(NULL, 1, 1.0, 1, now())]::fstore_stream.ad_act[])$$);
SELECT t.err($$SELECT fs_write('ad_act', ARRAY[ROW(6, 1, 1.0, 1, '-infinity')]::fstore_stream.ad_act[])$$);
SELECT t.err($$SELECT fs_write('ad_act', ARRAY[ROW(6, 1, 1.0, 1, now() + interval '6 minutes')]::fstore_stream.ad_act[])$$);
SELECT t.err($$SELECT fs_write('ad_act', ARRAY[NULL]::fstore_stream.ad_act[])$$);
SELECT t.err($$SELECT fs_write('ad_act', ARRAY[1, 2])$$);
SELECT count(*) FROM fstore_offline.ad_act WHERE doc_id = 6;
-- within max_future: accepted
SELECT * FROM fs_write('ad_act', ARRAY[ROW(6, 1, 1.0, 1, now() + interval '4 minutes')]::fstore_stream.ad_act[]);
SELECT * FROM fs_write('ad_act', NULL::fstore_stream.ad_act[]);
-- fs_write_query: the query's columns by position (keys, events, event_ts)
SELECT * FROM fs_write_query('ad_act', $$SELECT 8::bigint, 2, 1.5::real, 9::bigint, t.m(3)::timestamp
    UNION ALL SELECT 8, 3, NULL, 9, t.m(3.5)::timestamp$$);
SELECT opens_1h, clicks_1h, dwell_1d, users_1d FROM t.ad_at(4, 8);
SELECT t.err($$SELECT fs_write_query('ad_act', 'SELECT 8::bigint, 1, 1.0::real, 9::bigint, NULL::timestamptz')$$);
SELECT t.err($$SELECT fs_write_query('ad_act', 'DELETE FROM t.nothing')$$);
SELECT count(*) FROM fstore_offline.ad_act WHERE doc_id = 8;

-- bad reads
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.ad_act, ARRAY[1]::int[])$$);
SELECT t.err($$SELECT * FROM fs_get_many_at(NULL::fstore_online.ad_act, ARRAY[1]::bigint[], NULL)$$);
SELECT t.err($$SELECT * FROM fs_get_many_at(NULL::fstore_online.ad_act, ARRAY[1]::bigint[], 'infinity')$$);
SET fstore.max_keys_per_call = 2;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.ad_act, ARRAY[1, 2, 3]::bigint[])$$);
RESET fstore.max_keys_per_call;
SELECT count(*) FROM fs_get_many(NULL::fstore_online.ad_act, NULL::bigint[]);

-- definitions refused (with where, for the aggregation's parts)
CREATE FUNCTION t.agg_err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
    det text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || coalesce(' / ' || nullif(det, ''), '');
END
$$;
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['median(a) OVER 1 hour AS m'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 1 hour AS n', 'sum(b) OVER 1 hour AS s'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a text', ARRAY['sum(a) OVER 1 hour AS s'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['sum(DISTINCT a) OVER 1 hour AS s'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['sum(*) OVER 1 hour AS s'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 90 seconds AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 1 month AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 367 days AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER soon AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 0 minutes AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 1 hour'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 1 hour AS n', 'sum(a) OVER 1 hour AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 1 hour AS doc_id'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 1 hour AS n'], granularity => '1.5 seconds')$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['count(*) OVER 1 hour AS n'], granularity => '7 minutes')$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY[]::text[])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'nosuch', 'a int', ARRAY['count(*) OVER 1 hour AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_act', 'ad', 'a int', ARRAY['count(*) OVER 1 hour AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'event_ts int', ARRAY['count(*) OVER 1 hour AS n'])$$);
SELECT t.agg_err($$SELECT fs_create_aggregation_view('ad_x', 'ad', 'a int', ARRAY['max(a) OVER 1 hour AS n'], max_future => '2 days')$$);
SELECT count(*) FROM fstore.aggregation_views WHERE name = 'ad_x';

-- backfills: fs_materialize replaces the tiles of [since, until)
CREATE TABLE t.ad_src (doc_id bigint, clicks int, dwell real, user_id bigint, ts timestamp);
SELECT fs_create_aggregation_view('ad_bf', 'ad', 'clicks int, dwell real, user_id bigint',
    ARRAY['count(*) OVER 1 hour AS n_1h', 'sum(clicks) OVER 1 day AS clicks_1d'],
    source => 't.ad_src', timestamp_column => 'ts');
INSERT INTO t.ad_src SELECT 7, i, i, i, t.m(i)::timestamp FROM generate_series(0, 9) i;
SELECT read, written, unchanged, late FROM fs_materialize('ad_bf', t.m(0), t.m(5));
SELECT n_1h, clicks_1d FROM fs_get_many_at(NULL::fstore_online.ad_bf, ARRAY[7]::bigint[], t.m(20));
-- a re-run of the same range: the same tiles, nothing counted twice
SELECT read, written, unchanged, late FROM fs_materialize('ad_bf', t.m(0), t.m(5));
SELECT n_1h, clicks_1d FROM fs_get_many_at(NULL::fstore_online.ad_bf, ARRAY[7]::bigint[], t.m(20));
-- a streamed event inside a backfilled range is replaced by the re-run
SELECT * FROM fs_write('ad_bf', ARRAY[ROW(7, 100, 1, 1, t.m(1))]::fstore_stream.ad_bf[]);
SELECT n_1h, clicks_1d FROM fs_get_many_at(NULL::fstore_online.ad_bf, ARRAY[7]::bigint[], t.m(20));
SELECT read, written FROM fs_materialize('ad_bf', t.m(0), t.m(5));
SELECT n_1h, clicks_1d FROM fs_get_many_at(NULL::fstore_online.ad_bf, ARRAY[7]::bigint[], t.m(20));
-- since the watermark (t0 + 5 min) up to the current tile
SELECT read, written FROM fs_materialize('ad_bf');
SELECT n_1h, clicks_1d FROM fs_get_many_at(NULL::fstore_online.ad_bf, ARRAY[7]::bigint[], t.m(20));
SELECT count(*) AS runs FROM fstore.materialization_runs WHERE view_name = 'ad_bf';
SELECT watermark >= date_bin('1 minute', now() - interval '1 minute', '1970-01-01 00:00:00+00') AS watermark_moved
  FROM fstore.aggregation_views WHERE name = 'ad_bf';
SELECT t.err($$SELECT fs_materialize('ad_bf', t.m(0.5), t.m(5))$$);
SELECT t.err($$SELECT fs_materialize('ad_bf', t.m(5), t.m(0))$$);
SELECT t.err($$SELECT fs_materialize('ad_act')$$);

-- training sets: each label gets the aggregates of (event_ts - window,
-- event_ts] from the same tiles, as a read at that time
CREATE TABLE t.ad_labels AS
SELECT k AS doc_id, t.m(m) AS event_ts, m AS label
  FROM unnest(ARRAY[1, 2, 5, 99]::bigint[]) k, unnest(ARRAY[-1, 0, 0.5, 1, 9.9999, 10, 30, 59.9999, 60, 61, 24 * 60]) m;
SELECT fs_create_training_set('ad_train', 'SELECT doc_id, event_ts, label FROM t.ad_labels',
    ARRAY['ad_act.opens_10m', 'ad_act.opens_1h AS opens', 'ad_act.clicks_1h', 'ad_act.dwell_1d',
          'ad_act.dwell_max_1h', 'ad_act.clicks_min_1d', 'ad_act.dwells_1h', 'ad_act.users_1d']);
-- identical, row for row, to the online reads at each label's time
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (tr.opens_10m, tr.opens, tr.clicks_1h, tr.dwell_1d, tr.dwell_max_1h,
                               tr.clicks_min_1d, tr.dwells_1h, tr.users_1d)
                     IS DISTINCT FROM (o.opens_10m, o.opens_1h, o.clicks_1h, o.dwell_1d, o.dwell_max_1h,
                               o.clicks_min_1d, o.dwells_1h, o.users_1d)) AS differ
  FROM fstore_training.ad_train tr,
       LATERAL fs_get_many_at(NULL::fstore_online.ad_act, ARRAY[tr.doc_id], tr.event_ts) o;
SELECT label, opens_10m, opens, clicks_1h, users_1d FROM fstore_training.ad_train WHERE doc_id = 1 ORDER BY label;
-- and online at now() equals offline for a label at now() (one transaction: one now())
BEGIN;
SELECT fs_create_training_set('ad_now', 'SELECT doc_id, now() AS event_ts FROM unnest(ARRAY[1, 3, 4, 6]::bigint[]) doc_id',
    ARRAY['ad_act.*']);
SELECT count(*) FILTER (WHERE (tr.opens_10m, tr.opens_1h, tr.clicks_1h, tr.dwell_1d, tr.users_1d)
                     IS DISTINCT FROM (o.opens_10m, o.opens_1h, o.clicks_1h, o.dwell_1d, o.users_1d)) AS differ,
       count(*) AS rows
  FROM fstore_training.ad_now tr JOIN fs_get_many(NULL::fstore_online.ad_act, ARRAY[1, 3, 4, 6]::bigint[]) o USING (doc_id);
COMMIT;
-- mixed with an ordinary feature view
SELECT fs_create_feature_view('ad_plain', 'ad', 'score real');
SELECT * FROM fs_write('ad_plain', ARRAY[ROW(1, 0.5, t.m(0)), ROW(1, 0.7, t.m(30))]::fstore_online.ad_plain[]);
SELECT * FROM fstore_training.ad_train LIMIT 0;
SELECT fs_create_training_set('ad_mixed', 'SELECT doc_id, event_ts, label FROM t.ad_labels WHERE doc_id = 1',
    ARRAY['ad_act.opens_1h', 'ad_plain.score', 'ad_act.users_1d AS u']);
SELECT label, opens_1h, score, u FROM fstore_training.ad_mixed ORDER BY label;
SELECT t.err($$SELECT fs_training_set_query('SELECT doc_id, event_ts FROM t.ad_labels', ARRAY['ad_act.nosuch'])$$);
SELECT t.err($$SELECT fs_training_set_query('SELECT event_ts FROM t.ad_labels', ARRAY['ad_act.opens_1h'])$$);
SELECT t.err($$SELECT fs_training_set_query('SELECT doc_id::int, event_ts FROM t.ad_labels', ARRAY['ad_act.opens_1h'])$$);
SELECT t.err($$SELECT fs_training_set_query('SELECT doc_id, event_ts FROM t.ad_labels', ARRAY['ad_act.opens_1h'], created_before => now())$$);

-- differential: random events, every aggregate at many times against the
-- same windows computed in plain SQL over the raw events
SELECT setseed(0.14);
CREATE TABLE t.ad_raw AS
SELECT (1000 + floor(random() * 20))::bigint AS doc_id,
       CASE WHEN random() < 0.1 THEN NULL ELSE floor(random() * 10)::int END AS clicks,
       CASE WHEN random() < 0.1 THEN NULL ELSE (floor(random() * 16) / 4)::real END AS dwell,
       floor(random() * 30)::bigint AS user_id,
       t.m(floor(random() * 3 * 24 * 60 * 60) / 60.0 - 24 * 60) AS event_ts
  FROM generate_series(1, 3000);
-- in three calls, out of order
SELECT sum(w.written) AS written, sum(w.late) AS late
  FROM (SELECT array_agg(ROW(doc_id, clicks, dwell, user_id, event_ts)::fstore_stream.ad_act) AS a
          FROM t.ad_raw GROUP BY doc_id % 3) x,
       LATERAL fs_write('ad_act', x.a) w;
CREATE TABLE t.ad_times AS
SELECT t.m(x) AS at FROM unnest(ARRAY[-24 * 60, -1, 0, 0.5, 10, 59.99, 60, 61, 12 * 60, 24 * 60, 24 * 60 + 0.01, 47 * 60 + 59]) x;
WITH want AS (
    SELECT k.doc_id, ts.at,
           count(*) FILTER (WHERE tile > ts.at - interval '10 minutes') AS opens_10m,
           count(*) FILTER (WHERE tile > ts.at - interval '1 hour') AS opens_1h,
           sum(r.clicks) FILTER (WHERE tile > ts.at - interval '1 hour') AS clicks_1h,
           avg(r.dwell::float8) FILTER (WHERE tile > ts.at - interval '24 hours') AS dwell_1d,
           max(r.dwell) FILTER (WHERE tile > ts.at - interval '1 hour') AS dwell_max_1h,
           min(r.clicks) FILTER (WHERE tile > ts.at - interval '24 hours') AS clicks_min_1d,
           count(r.dwell) FILTER (WHERE tile > ts.at - interval '1 hour') AS dwells_1h,
           count(DISTINCT r.user_id) FILTER (WHERE tile > ts.at - interval '24 hours') AS users_1d
      FROM (SELECT DISTINCT doc_id FROM t.ad_raw) k CROSS JOIN t.ad_times ts
      LEFT JOIN LATERAL (SELECT r.*, date_bin('1 minute', r.event_ts, '1970-01-01 00:00:00+00') AS tile
                           FROM t.ad_raw r WHERE r.doc_id = k.doc_id) r
        ON r.tile > ts.at - interval '24 hours' AND r.tile <= ts.at
     GROUP BY k.doc_id, ts.at),
got AS (
    SELECT ts.at, g.* FROM t.ad_times ts,
           LATERAL fs_get_many_at(NULL::fstore_online.ad_act,
                                  ARRAY(SELECT DISTINCT doc_id FROM t.ad_raw), ts.at) g)
SELECT count(*) AS compared,
       count(*) FILTER (WHERE (w.opens_10m, w.opens_1h, w.clicks_1h, w.dwell_1d, w.dwell_max_1h,
                               w.clicks_min_1d, w.dwells_1h, w.users_1d)
                   IS DISTINCT FROM (g.opens_10m, g.opens_1h, g.clicks_1h, g.dwell_1d, g.dwell_max_1h,
                               g.clicks_min_1d, g.dwells_1h, g.users_1d)) AS differ,
       count(*) FILTER (WHERE w.opens_1h > 0) AS nonzero
  FROM want w JOIN got g USING (doc_id, at);

-- privileges: reading needs SELECT on fstore_online.<view>, writing the
-- tiles' privileges; the owner's tables are read as the owner
CREATE ROLE ad_reader;
CREATE ROLE ad_nobody;
GRANT USAGE ON SCHEMA t TO ad_reader, ad_nobody;
GRANT SELECT ON fstore_online.ad_act TO ad_reader;
SET ROLE ad_reader;
SELECT doc_id, opens_1h FROM fs_get_many(NULL::fstore_online.ad_act, ARRAY[4]::bigint[]);
SELECT t.err($$SELECT * FROM fs_write('ad_act', ARRAY[ROW(4, 1, 1.0, 1, now())]::fstore_stream.ad_act[])$$);
SELECT t.err($$SELECT * FROM fs_stream_apply('ad_act')$$);
SELECT t.err($$SELECT fs_compact_aggregation_view('ad_act')$$);
SET ROLE ad_nobody;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.ad_act, ARRAY[4]::bigint[])$$);
SELECT t.err($$SELECT * FROM fs_get_many_at(NULL::fstore_online.ad_act, ARRAY[4]::bigint[], now())$$);
SELECT t.err($$UPDATE fstore.aggregation_views SET read_sql = 'SELECT 1'$$);
RESET ROLE;
REVOKE ALL ON SCHEMA t FROM ad_reader, ad_nobody;
REVOKE ALL ON fstore_online.ad_act FROM ad_reader;
DROP ROLE ad_reader;
DROP ROLE ad_nobody;

-- storage stays bounded: tiles older than the longest window plus the
-- retention go (writes remove those of the keys they touch; compaction all)
UPDATE fstore.aggregation_views SET retention = '1 hour' WHERE name = 'ad_act';
SELECT count(*) > 0 AS has_expired FROM fstore_offline.ad_act
 WHERE tile_start < date_bin('1 minute', now() - interval '25 hours', '1970-01-01 00:00:00+00');
SELECT * FROM fs_write('ad_act', ARRAY[ROW(1000, 1, 1.0, 1, now())]::fstore_stream.ad_act[]);
SELECT count(*) AS expired_left_1000 FROM fstore_offline.ad_act
 WHERE doc_id = 1000 AND tile_start < date_bin('1 minute', now() - interval '25 hours', '1970-01-01 00:00:00+00');
SELECT fs_compact_aggregation_view('ad_act') > 0 AS compacted;
SELECT count(*) AS expired_left FROM fstore_offline.ad_act
 WHERE tile_start < date_bin('1 minute', now() - interval '25 hours', '1970-01-01 00:00:00+00');
SELECT fs_compact_aggregation_view('ad_act') AS again;

-- the stream path in C (views without count(DISTINCT)) against the SQL
-- path: the same events, through the queue into cx_q and by fs_write into
-- its twin cx_w, give the same tiles column for column (as text: same
-- numeric scales; float sums to 9 significant digits, as their rounding
-- depends on the order of the additions); the batches are small, so later
-- ones merge into stored tiles, and one runs in REPEATABLE READ (the SQL
-- path) between C ones; a two-column key, NULLs in every aggregated
-- column, NaN
SELECT fs_create_entity('cx', 'region text, id int');
SELECT fs_create_aggregation_view(v, 'cx',
    events => 'a smallint, b int, c bigint, d numeric, e real, f double precision, g text, h timestamptz',
    aggregations => ARRAY['count(*) OVER 1 hour AS n', 'sum(a) OVER 1 hour AS sa',
        'avg(b) OVER 1 day AS ab', 'sum(c) OVER 1 hour AS sc', 'sum(d) OVER 1 hour AS sd',
        'avg(e) OVER 1 hour AS ae', 'sum(f) OVER 1 hour AS sf', 'min(g) OVER 1 hour AS ming',
        'max(g) OVER 1 hour AS maxg', 'min(h) OVER 1 day AS minh', 'max(e) OVER 1 hour AS maxe',
        'count(g) OVER 1 hour AS cg'])
  FROM unnest(ARRAY['cx_q', 'cx_w']) v;
SELECT tile_columns FROM fstore.aggregation_views WHERE name = 'cx_q';
CREATE TABLE t.cx_ev AS
SELECT (ARRAY['north', 'South', 'east'])[1 + i % 3] AS region, i % 7 AS id,
       CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 11)::smallint END AS a,
       CASE WHEN i % 6 = 0 THEN NULL ELSE i * 1000 END AS b,
       CASE WHEN i % 4 = 0 THEN NULL ELSE 9000000000000000000 + i END AS c,
       CASE WHEN i % 9 = 0 THEN NULL ELSE round(i / 7.0, (i % 3)) END AS d,
       CASE WHEN i % 8 = 0 THEN NULL WHEN i = 77 THEN 'NaN'::real ELSE (i / 3.0)::real END AS e,
       CASE WHEN i % 10 = 0 THEN NULL ELSE i / 9.0 END AS f,
       CASE WHEN i % 11 = 0 THEN NULL ELSE chr(65 + i % 26) || i END AS g,
       CASE WHEN i % 12 = 0 THEN NULL ELSE t.agg_t0() + make_interval(days => i % 3) END AS h,
       CASE WHEN i % 50 = 0 THEN now() - interval '10 days'
            ELSE t.m((i % 13) / 3.0) END AS event_ts
  FROM generate_series(1, 600) i;
INSERT INTO fstore_stream.cx_q SELECT * FROM t.cx_ev;
INSERT INTO fstore_stream.cx_q (region, id, a, event_ts) VALUES
    (NULL, 1, 1, now()), ('north', NULL, 1, now()), ('north', 1, 1, NULL),
    ('north', 1, 1, 'infinity'), ('north', 1, 1, now() + interval '1 hour');
SELECT events, applied, dead_letters, written, late FROM fs_stream_apply('cx_q', 97);
SELECT events, applied, dead_letters, written, late FROM fs_stream_apply('cx_q', 97);
SELECT events, applied, dead_letters, written, late FROM fs_stream_apply('cx_q', 97);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT events, applied FROM fs_stream_apply('cx_q', 97);
COMMIT;
SELECT events, applied, dead_letters, written, late FROM fs_stream_apply('cx_q');
SELECT count(*) AS queued FROM fstore_stream.cx_q;
SELECT written, late FROM fs_write('cx_w', ARRAY(SELECT CAST(ROW(x.*) AS fstore_stream.cx_w) FROM t.cx_ev x));
SELECT count(*) AS tiles, sum(fs_n) AS events, count(DISTINCT (region, id)) AS keys,
       count(*) FILTER (WHERE fs_n > 1) AS merged
  FROM fstore_offline.cx_q;
CREATE FUNCTION t.cx_tiles(v regclass) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT ROW(region, id, tile_start, fs_n, fs_last_ts, fs_1, fs_2, fs_3, fs_4,'
        ' fs_5, fs_6, to_char(fs_7, %L), to_char(fs_8, %L), fs_9, fs_10, fs_11, fs_12, fs_13)::text FROM %s',
        '9.99999999EEEE', '9.99999999EEEE', v);
END $$;
SELECT count(*) AS differ FROM (
    (SELECT * FROM t.cx_tiles('fstore_offline.cx_q') EXCEPT ALL SELECT * FROM t.cx_tiles('fstore_offline.cx_w'))
    UNION ALL
    (SELECT * FROM t.cx_tiles('fstore_offline.cx_w') EXCEPT ALL SELECT * FROM t.cx_tiles('fstore_offline.cx_q'))) d;
SELECT count(*) AS reads, count(*) FILTER (WHERE
           (q.n, q.sa, q.sc, q.sd, q.ming, q.maxg, q.minh, q.maxe, q.cg, to_char(q.ab, '9.99999999EEEE'),
            to_char(q.ae, '9.99999999EEEE'), to_char(q.sf, '9.99999999EEEE'), q.event_ts)::text
           IS DISTINCT FROM
           (w.n, w.sa, w.sc, w.sd, w.ming, w.maxg, w.minh, w.maxe, w.cg, to_char(w.ab, '9.99999999EEEE'),
            to_char(w.ae, '9.99999999EEEE'), to_char(w.sf, '9.99999999EEEE'), w.event_ts)::text) AS differ
  FROM fs_get_many_at(NULL::fstore_online.cx_q, ARRAY(SELECT DISTINCT ROW(region, id)::fstore.cx_key FROM t.cx_ev), t.m(5)) q
  FULL JOIN fs_get_many_at(NULL::fstore_online.cx_w, ARRAY(SELECT DISTINCT ROW(region, id)::fstore.cx_key FROM t.cx_ev), t.m(5)) w
    ON (q.region, q.id) = (w.region, w.id);
SELECT maxe, n, cg FROM fs_get_many_at(NULL::fstore_online.cx_q, ARRAY[ROW('east', 0)::fstore.cx_key], t.m(5));
SELECT d.error, d.sqlstate, d.event->>'region' AS region, d.event->>'id' AS key_id,
       d.event->>'event_ts' IN ('infinity') AS infinite, d.event->>'a' AS a
  FROM fstore.dead_letters d WHERE d.view_name = 'cx_q' ORDER BY d.id;
-- a queue whose key column was altered no longer matches the tiles: the
-- batch fails (42804) and its events stay queued
ALTER TABLE fstore_stream.cx_q ALTER COLUMN id TYPE bigint;
INSERT INTO fstore_stream.cx_q (region, id, a, event_ts) VALUES ('north', 1, 1, t.m(1));
SELECT t.err($$SELECT fs_stream_apply('cx_q')$$);
SELECT count(*) AS queued FROM fstore_stream.cx_q;
SELECT fs_drop_aggregation_view(v) FROM unnest(ARRAY['cx_q', 'cx_w']) v;
SELECT fs_drop_entity('cx');
DROP TABLE t.cx_ev;
DROP FUNCTION t.cx_tiles(regclass);

-- drop
DROP FUNCTION t.ad_at(float8, bigint[]);
SELECT t.err($$SELECT fs_drop_entity('ad')$$);
SELECT fs_drop_feature_view('ad_plain');
SELECT fs_drop_aggregation_view('ad_bf');
SELECT fs_drop_aggregation_view('ad_act');
SELECT t.err($$SELECT fs_drop_aggregation_view('ad_act')$$);
SELECT to_regclass('fstore_online.ad_act'), to_regclass('fstore_offline.ad_act'), to_regclass('fstore_stream.ad_act');
SELECT count(*) FROM fstore.aggregations WHERE view_name = 'ad_act';
SELECT count(*) FROM fstore.dead_letters WHERE view_name = 'ad_act';
SELECT fs_drop_training_set(n) FROM unnest(ARRAY['ad_train', 'ad_now', 'ad_mixed']) n;
SELECT fs_drop_entity('ad');
DROP FUNCTION t.agg_err(text), t.m(float8), t.agg_t0();
DROP TABLE t.agg_clock, t.ad_src, t.ad_labels, t.ad_raw, t.ad_times;
ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
