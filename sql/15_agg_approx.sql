-- approx_count_distinct in aggregation views (docs/aggregations.md
-- "Approximate distinct counts"): a HyperLogLog sketch per tile, merged at
-- read time.  Exact for small cardinalities, within its error bound for
-- larger ones, the same online, offline and through every ingestion path.
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone() AS workers;
SELECT fs_create_entity('ax', 'k int');
SELECT fs_create_aggregation_view('ax_v', 'ax', events => 'u bigint, s text',
    aggregations => ARRAY['approx_count_distinct(u) OVER 1 hour AS au_1h',
                          'count(DISTINCT u) OVER 1 hour AS eu_1h',
                          'approx_count_distinct(s) OVER 1 day AS as_1d',
                          'count(DISTINCT s) OVER 1 day AS es_1d']);
SELECT name, func, arg, window_size, type FROM fstore.aggregations WHERE view_name = 'ax_v' ORDER BY position;
SELECT tile_columns FROM fstore.aggregation_views WHERE name = 'ax_v';
SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
 WHERE a.attrelid = 'fstore_offline.ax_v'::regclass AND a.attname LIKE 'fs\_%' AND a.attnum > 0 ORDER BY a.attnum;

BEGIN;
-- small cardinalities: key k has k distinct values (k = 1 .. 12, each sent
-- three times, spread over 30 tiles), and one NULL value, ignored; key 0
-- has only NULL values.  Events 2 hours old count in the day only.
SELECT * FROM fs_write('ax_v', ARRAY(
    SELECT ROW(k, v, 's' || v, now() - make_interval(mins => 1 + (v * 7 + r) % 30))::fstore_stream.ax_v
      FROM generate_series(1, 12) k, generate_series(1, k) v, generate_series(1, 3) r
    UNION ALL SELECT ROW(k, NULL, NULL, now() - interval '3 minutes')::fstore_stream.ax_v
      FROM generate_series(0, 12) k
    UNION ALL SELECT ROW(k, 1000 + k, 'old', now() - interval '2 hours')::fstore_stream.ax_v
      FROM generate_series(1, 12) k));
-- approx equals exact for every key (au_1h = k, as_1d = k + 1 with 'old')
SELECT k, au_1h, eu_1h, as_1d, es_1d FROM fs_get_many(NULL::fstore_online.ax_v, ARRAY(SELECT generate_series(0, 13)));
-- a tile with one value keeps a 5-byte sketch (2 header bytes, one register)
SELECT DISTINCT length(fs_3) AS bytes FROM fstore_offline.ax_v WHERE k = 1 AND fs_3 IS NOT NULL;
-- a key with only NULLs keeps no sketch
SELECT count(*) AS tiles, count(fs_3) AS sketches FROM fstore_offline.ax_v WHERE k = 0;

-- larger random sets: 12 keys with 1,500 to 18,000 events drawn from 3,000
-- to 36,000 values (duplicates included); the error against
-- count(DISTINCT) stays within 3 standard errors (1.6 % each) per key and
-- averages under one
SELECT setseed(0.14);
CREATE TEMP TABLE ax_big AS
SELECT 100 + k AS k, (random() * 3000 * k)::bigint AS u, now() - make_interval(mins => 1 + (i % 50)) AS ts
  FROM generate_series(1, 12) k, generate_series(1, 1500 * k) i;
SELECT * FROM fs_write('ax_v', ARRAY(SELECT ROW(k, u, u::text, ts)::fstore_stream.ax_v FROM ax_big));
SELECT count(*) AS keys,
       bool_and(abs(au_1h - eu_1h) <= 0.048 * eu_1h) AS au_within_3se,
       bool_and(abs(as_1d - es_1d) <= 0.048 * es_1d) AS as_within_3se,
       avg(abs(au_1h - eu_1h)::float8 / eu_1h) < 0.016 AS au_mean_under_1se,
       avg(abs(as_1d - es_1d)::float8 / es_1d) < 0.016 AS as_mean_under_1se,
       min(eu_1h) AS fewest, max(eu_1h) AS most
  FROM fs_get_many(NULL::fstore_online.ax_v, ARRAY(SELECT DISTINCT k FROM ax_big));
-- the exact counts are those of plain SQL over the raw events
SELECT count(*) AS differ
  FROM fs_get_many(NULL::fstore_online.ax_v, ARRAY(SELECT DISTINCT k FROM ax_big)) o
  JOIN (SELECT k, count(DISTINCT u) AS n FROM ax_big GROUP BY k) e USING (k)
 WHERE o.eu_1h <> e.n;
-- a sketch grows by 3 bytes per register in use up to 1,365 of them, then
-- is dense: 4,098 bytes.  A tile of 5,000 distinct values is dense; its
-- estimate is within 3 standard errors.
SELECT max(length(fs_3)) AS max_sparse FROM fstore_offline.ax_v;
SELECT * FROM fs_write('ax_v', ARRAY(SELECT ROW(200, g, g::text, now() - interval '2 minutes')::fstore_stream.ax_v
                                      FROM generate_series(1, 5000) g));
SELECT length(fs_1) AS bytes, abs(fstore._hll_estimate(fs_1) - 5000) <= 240 AS within_3se
  FROM fstore_offline.ax_v WHERE k = 200;

-- offline equals online: labels at now() and at an earlier time
CREATE TEMP TABLE ax_labels AS
SELECT k, now() AS event_ts FROM generate_series(0, 13) k
UNION ALL SELECT k, now() - interval '90 minutes' FROM generate_series(0, 13) k
UNION ALL SELECT DISTINCT k, now() FROM ax_big;
SELECT fs_create_training_set('ax_train', 'SELECT k, event_ts FROM ax_labels', ARRAY['ax_v.*']);
SELECT count(*) AS labels,
       count(*) FILTER (WHERE (tr.au_1h, tr.eu_1h, tr.as_1d, tr.es_1d) IS DISTINCT FROM (o.au_1h, o.eu_1h, o.as_1d, o.es_1d)) AS differ
  FROM fstore_training.ax_train tr
  JOIN LATERAL fs_get_many_at(NULL::fstore_online.ax_v, ARRAY[tr.k], tr.event_ts) o ON true;
SELECT count(*) AS labels_at_now,
       count(*) FILTER (WHERE (tr.au_1h, tr.as_1d) IS DISTINCT FROM (o.au_1h, o.as_1d)) AS differ
  FROM fstore_training.ax_train tr
  JOIN fs_get_many(NULL::fstore_online.ax_v, ARRAY(SELECT DISTINCT k FROM ax_labels)) o USING (k)
 WHERE tr.event_ts = now();
-- 90 minutes ago the hour holds the 2-hour-old events only: 1 per key
SELECT k, au_1h, as_1d FROM fstore_training.ax_train
 WHERE event_ts < now() AND k IN (0, 1, 5) ORDER BY k;
SELECT fs_drop_training_set('ax_train');
COMMIT;

-- the stream path (the SQL statement, as count(DISTINCT) views) gives the
-- same sketches as fs_write
SELECT fs_create_aggregation_view('ax_s', 'ax', events => 'u bigint, s text',
    aggregations => ARRAY['approx_count_distinct(u) OVER 1 hour AS au_1h',
                          'approx_count_distinct(s) OVER 1 day AS as_1d']);
SELECT fs_create_aggregation_view('ax_w', 'ax', events => 'u bigint, s text',
    aggregations => ARRAY['approx_count_distinct(u) OVER 1 hour AS au_1h',
                          'approx_count_distinct(s) OVER 1 day AS as_1d']);
CREATE TEMP TABLE ax_ev AS
SELECT k, (i * 7919) % 3000 AS u, now() - make_interval(mins => i % 40) AS ts
  FROM generate_series(1, 5) k, generate_series(1, 1500 * k) i;
INSERT INTO fstore_stream.ax_s SELECT k, u, u::text, ts FROM ax_ev;
SELECT events, dead_letters FROM fs_stream_apply('ax_s');
SELECT * FROM fs_write('ax_w', ARRAY(SELECT ROW(k, u, u::text, ts)::fstore_stream.ax_w FROM ax_ev ORDER BY random()));
SELECT count(*) AS tiles, count(*) FILTER (WHERE s.fs_1 IS DISTINCT FROM w.fs_1 OR s.fs_2 IS DISTINCT FROM w.fs_2) AS differ
  FROM fstore_offline.ax_s s FULL JOIN fstore_offline.ax_w w USING (k, tile_start);
-- replaying the same events into an existing tile changes no sketch
-- (a sketch is a set: adding a value again is idempotent)
SELECT * FROM fs_write('ax_w', ARRAY(SELECT ROW(k, u, u::text, ts)::fstore_stream.ax_w FROM ax_ev));
SELECT count(*) FILTER (WHERE s.fs_1 IS DISTINCT FROM w.fs_1 OR s.fs_2 IS DISTINCT FROM w.fs_2) AS differ
  FROM fstore_offline.ax_s s FULL JOIN fstore_offline.ax_w w USING (k, tile_start);

-- bad input
SELECT t.err($$SELECT fs_create_aggregation_view('ax_bad', 'ax', events => 'u bigint',
    aggregations => ARRAY['approx_count_distinct(*) OVER 1 hour AS a'])$$);
SELECT t.err($$SELECT fs_create_aggregation_view('ax_bad', 'ax', events => 'u bigint',
    aggregations => ARRAY['approx_count_distinct(DISTINCT u) OVER 1 hour AS a'])$$);
SELECT t.err($$SELECT fs_create_aggregation_view('ax_bad', 'ax', events => 'u bigint',
    aggregations => ARRAY['approx_count_distinct(v) OVER 1 hour AS a'])$$);
SELECT t.err($$SELECT fs_create_aggregation_view('ax_bad', 'ax', events => 'p point',
    aggregations => ARRAY['approx_count_distinct(p) OVER 1 hour AS a'])$$);
SELECT t.err($$SELECT fs_create_aggregation_view('ax_bad', 'ax', events => 'u bigint',
    aggregations => ARRAY['approx_count_distinct(u) OVER 90 seconds AS a'])$$);
-- malformed sketches are refused, never read out of bounds
SELECT t.err($$SELECT fstore._hll_estimate('\x01'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x010b'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x020c00'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x010c0001'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x010c000100'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x010c000136'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x010c100001'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x010c000201000101'::bytea)$$);
SELECT t.err($$SELECT fstore._hll_estimate('\x030c'::bytea)$$);
SELECT fstore._hll_estimate('\x010c'::bytea) AS empty, fstore._hll_estimate('\x010c000101'::bytea) AS one,
       fstore._hll_estimate('\x010c000101000201'::bytea) AS two;
SELECT t.err($$SELECT fstore._hll_merge('\x010c000101'::bytea, '\x02'::bytea)$$);
SELECT fstore._hll_merge(NULL, NULL) IS NULL AS null_merge;
-- a damaged tile fails the read (XX001) and loses nothing else
UPDATE fstore_offline.ax_w SET fs_1 = '\x020c'::bytea WHERE k = 1;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.ax_w, ARRAY[1])$$);
SELECT k, au_1h > 0 AS counted FROM fs_get_many(NULL::fstore_online.ax_w, ARRAY[2, 3]);

SELECT fs_drop_aggregation_view(v) FROM unnest(ARRAY['ax_v', 'ax_s', 'ax_w']) v;
SELECT fs_drop_entity('ax');
ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
