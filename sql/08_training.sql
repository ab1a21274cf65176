-- Training sets: point-in-time joins over the offline history, checked
-- against rows computed by hand.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- rows (in order) where the lateral and the hash strategies disagree
CREATE FUNCTION t.differ(q text, f text[], cut timestamptz DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM (SELECT row_number() OVER () AS n, l FROM (%s) l) a
                      FULL JOIN (SELECT row_number() OVER () AS n, h FROM (%s) h) b USING (n)
                     WHERE a.l::text IS DISTINCT FROM b.h::text',
                   fs_training_set_query(q, f, cut, 'lateral'), fs_training_set_query(q, f, cut, 'hash'))
       INTO n;
    RETURN n;
END $$;

SELECT fs_create_feature_view('tv1', 'doc', 'a int, b text');
SELECT fs_create_feature_view('tv2', 'doc', 'c int', ttl => interval '1 day');
SELECT * FROM fs_write('tv1', ARRAY[ROW(1, 10, 'x', '2026-01-01'), ROW(1, 11, 'y', '2026-01-03'),
                                    ROW(2, 20, 'z', '2026-01-02'), ROW(4, NULL, 'n', '2026-01-01')]::fstore_online.tv1[]);
-- history written late: the online row keeps 11, the history gets 15 at 01-02
SELECT * FROM fs_write('tv1', ARRAY[ROW(1, 15, 'late', '2026-01-02')]::fstore_online.tv1[]);
SELECT * FROM fs_write('tv2', ARRAY[ROW(1, 100, '2026-01-01'), ROW(1, 101, '2026-01-05')]::fstore_online.tv2[]);

CREATE TABLE t.labels (row_no int, doc_id bigint, event_ts timestamptz, label text);
INSERT INTO t.labels VALUES
    (1, 1, '2026-01-01 00:00', 'equal ts'),
    (2, 1, '2026-01-02 12:00', 'late-written history; c expired'),
    (3, 1, '2026-01-03 00:00', 'equal ts again'),
    (4, 1, '2025-12-31 00:00', 'before any history'),
    (5, 2, '2026-01-02 00:00', 'one row'),
    (6, 2, '2026-01-02 00:00', 'duplicate entity row'),
    (7, 3, '2026-01-10 00:00', 'no history'),
    (8, 1, '2026-01-05 06:00', 'c within ttl'),
    (9, 1, '2026-01-06 00:00', 'c exactly at the ttl boundary'),
    (10, 1, '2026-01-06 00:00:01', 'c just past the ttl'),
    (11, 4, '2026-01-02 00:00', 'a stored NULL stays NULL');

-- hand-computed:
--  row  a     b      c
--   1   10    x      100
--   2   15    late   -
--   3   11    y      -
--   4   -     -      -
--   5   20    z      -
--   6   20    z      -
--   7   -     -      -
--   8   11    y      101
--   9   11    y      101
--  10   11    y      -
--  11   -     n      -
SELECT fs_create_training_set('ts1',
    entity_query => 'SELECT row_no, doc_id, event_ts, label FROM t.labels ORDER BY row_no',
    features => ARRAY['tv1.a', 'tv1.b', 'tv2.c']);
SELECT * FROM fstore_training.ts1 ORDER BY row_no;
-- both strategies give exactly the same rows
SELECT fs_create_training_set('ts1_lateral', 'SELECT row_no, doc_id, event_ts, label FROM t.labels',
    ARRAY['tv1.a', 'tv1.b', 'tv2.c'], strategy => 'lateral');
SELECT fs_create_training_set('ts1_hash', 'SELECT row_no, doc_id, event_ts, label FROM t.labels',
    ARRAY['tv1.a', 'tv1.b', 'tv2.c'], strategy => 'hash');
SELECT (SELECT count(*) FROM (SELECT * FROM fstore_training.ts1_lateral EXCEPT ALL SELECT * FROM fstore_training.ts1_hash) x)
     + (SELECT count(*) FROM (SELECT * FROM fstore_training.ts1_hash EXCEPT ALL SELECT * FROM fstore_training.ts1_lateral) x)
       AS differences;
SELECT (SELECT count(*) FROM (SELECT * FROM fstore_training.ts1 EXCEPT ALL SELECT * FROM fstore_training.ts1_hash) x) AS differences;
-- never a value from the future: every feature's history row is at or before
SELECT count(*) AS future_values FROM fstore_training.ts1_hash m
 WHERE m.a IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM fstore_offline.tv1 h WHERE h.doc_id = m.doc_id AND h.a = m.a AND h.event_ts <= m.event_ts);

-- the SQL it runs, readable
SELECT fs_training_set_query('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a', 'tv2.c AS c_recent'], strategy => 'lateral');
SELECT fs_training_set_query('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv2.c'], strategy => 'hash');
SELECT name, row_count, features FROM fstore.training_sets ORDER BY name;

-- aliases, view.*, services
SELECT fs_create_training_set('ts2', 'SELECT doc_id, event_ts FROM t.labels WHERE row_no IN (1, 8)',
    ARRAY['tv1.*', 'tv2.c AS c_1d']);
SELECT * FROM fstore_training.ts2 ORDER BY event_ts;
SELECT fs_create_training_set('ts3', $$SELECT 1::bigint AS doc_id, '2026-06-01'::timestamptz AS event_ts, true AS clicked
                                      UNION ALL SELECT 2, '2026-06-01', false$$,
    ARRAY['ranker_v1']);
SELECT * FROM fstore_training.ts3 ORDER BY doc_id;

-- composite keys
SELECT * FROM fs_write('ud', ARRAY[ROW(1, 10, 7, '2026-02-01'), ROW(1, 10, 8, '2026-02-03')]::fstore_online.ud[]);
SELECT fs_create_training_set('ts4', $$SELECT * FROM (VALUES (1::bigint, 10::bigint, '2026-02-02'::timestamptz),
                                                          (1, 10, '2026-02-04'), (1, 11, '2026-02-04'), (2, 10, '2026-01-01')) v(user_id, doc_id, event_ts)$$,
    ARRAY['ud.clicks']);
SELECT * FROM fstore_training.ts4;

-- every case above, both ways
SELECT t.differ('SELECT row_no, doc_id, event_ts, label FROM t.labels', ARRAY['tv1.a', 'tv1.b', 'tv2.c']) AS ts1,
       t.differ('SELECT doc_id, event_ts FROM t.labels WHERE row_no IN (1, 8)', ARRAY['tv1.*', 'tv2.c AS c_1d']) AS ts2,
       t.differ($$SELECT 1::bigint AS doc_id, '2026-06-01'::timestamptz AS event_ts UNION ALL SELECT 2, '2026-06-01'$$, ARRAY['ranker_v1']) AS ts3,
       t.differ($$SELECT * FROM (VALUES (1::bigint, 10::bigint, '2026-02-02'::timestamptz), (1, 10, '2026-02-04'),
                  (1, 11, '2026-02-04'), (2, 10, '2026-01-01')) v(user_id, doc_id, event_ts)$$, ARRAY['ud.clicks']) AS ts4;

-- text keys, NULL keys and times, timestamp and date event_ts, equal
-- event_ts decided by created_at, and many chunks of entity rows
SELECT fs_create_feature_view('tv3', 'tag', 'n int', ttl => interval '3 days');
INSERT INTO fstore_offline.tv3 (tag, event_ts, n, created_at) VALUES
    ('a', '2026-01-01', 1, '2026-01-01'), ('a', '2026-01-03', 2, '2026-01-03'),
    ('a', '2026-01-03', 3, '2026-01-04'),          -- same event_ts, written later: wins
    ('b', '2026-01-02', 4, '2026-01-02'), ('é', '2026-01-01', 5, '2026-01-01');
CREATE TABLE t.tag_labels AS
SELECT i, (ARRAY['a', 'b', 'é', 'zz', NULL])[1 + (i / 240) % 5] AS tag,
       CASE WHEN i % 97 = 0 THEN NULL ELSE '2025-12-31'::timestamptz + (i % 240) * interval '1 hour' END AS event_ts
  FROM generate_series(1, 5000) i;
SELECT fs_create_training_set('ts7', 'SELECT tag, event_ts, i FROM t.tag_labels ORDER BY i', ARRAY['tv3.n'], strategy => 'hash');
-- hand-computed (each tag at every hour from 12-31 to 01-09): a gets 1 from
-- 01-01, then 3 (not 2) from 01-03 until 01-06 00:00 (the ttl boundary is
-- included); b gets 4 from 01-02 to 01-05 00:00; é 5 from 01-01 to 01-04
-- 00:00; zz, NULL tags and NULL times get nothing
SELECT tag, n, min(event_ts), max(event_ts), count(*) FROM fstore_training.ts7
 GROUP BY 1, 2 ORDER BY 1, 3 NULLS FIRST, 2;
SELECT count(*) AS out_of_order FROM (SELECT i, lag(i) OVER () AS prev FROM fstore_training.ts7) x WHERE i < prev;
SET fstore.training_work_mem = '1MB';
SELECT t.differ('SELECT tag, event_ts, i FROM t.tag_labels ORDER BY i', ARRAY['tv3.n']) AS chunked,
       t.differ('SELECT tag, event_ts::timestamp AS event_ts, i FROM t.tag_labels ORDER BY i', ARRAY['tv3.n']) AS "timestamp",
       t.differ('SELECT tag, event_ts::date AS event_ts, i FROM t.tag_labels ORDER BY i', ARRAY['tv3.n']) AS date;
RESET fstore.training_work_mem;

-- integer keys at scale (the pipelined pass): 2,000 history rows over 50
-- keys, 450 pairs sharing key and event_ts (the later created_at wins),
-- 3,000 entity rows
SELECT fs_create_feature_view('tv4', 'doc', 'x int, y float8, z text');
INSERT INTO fstore_offline.tv4 (doc_id, event_ts, x, y, z, created_at)
SELECT i % 50, '2026-01-01'::timestamptz + (i % 31) * interval '1 hour', i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE i / 3.0 END, repeat('z', i % 5),
       '2026-02-01'::timestamptz + i * interval '1 second'
  FROM generate_series(1, 2000) i;
CREATE TABLE t.doc_labels AS
SELECT i, ((i * 7919) % 60)::bigint AS doc_id, '2025-12-31'::timestamptz + (i % 150) * interval '1 hour' AS event_ts
  FROM generate_series(1, 3000) i;
SELECT t.differ('SELECT i, doc_id, event_ts FROM t.doc_labels', ARRAY['tv4.*']) AS int_keys,
       t.differ('SELECT i, doc_id, event_ts FROM t.doc_labels', ARRAY['tv4.*', 'tv1.a', 'tv2.c']) AS three_views;
SELECT count(*) AS rows, count(x) AS with_x, count(y) AS with_y, count(DISTINCT x) AS distinct_x
  FROM fstore.as_of_join('SELECT i, doc_id, event_ts FROM t.doc_labels', ARRAY['tv4.*'])
    AS t(i int, doc_id bigint, event_ts timestamptz, x int, y float8, z text);
SET fstore.training_work_mem = '1MB';
SELECT t.differ('SELECT i, doc_id, event_ts FROM t.doc_labels', ARRAY['tv4.*']) AS int_keys_chunked;
RESET fstore.training_work_mem;

-- thousands of distinct keys per chunk, integer and text (both key tables
-- well filled, with colliding buckets), half of them without history:
-- even keys have rows at 10:00 and 30:00 (w = key x 10, key x 10 + 1),
-- odd keys none
SELECT fs_create_feature_view('tv5', 'doc', 'w int');
SELECT fs_create_feature_view('tv6', 'tag', 'w int');
INSERT INTO fstore_offline.tv5 (doc_id, event_ts, w, created_at)
SELECT k, '2026-01-01'::timestamptz + h * interval '1 hour', k * 10 + h / 20, '2026-02-01'
  FROM generate_series(0, 3998, 2) k, (VALUES (10), (30)) v(h);
INSERT INTO fstore_offline.tv6 (tag, event_ts, w, created_at)
SELECT 'k' || doc_id, event_ts, w, created_at FROM fstore_offline.tv5;
CREATE TABLE t.many_labels AS
SELECT i, (i % 4000)::bigint AS doc_id, 'k' || (i % 4000) AS tag,
       '2026-01-01'::timestamptz + (i % 48) * interval '1 hour' AS event_ts
  FROM generate_series(1, 8000) i;
SELECT t.differ('SELECT i, doc_id, event_ts FROM t.many_labels', ARRAY['tv5.w']) AS many_int,
       t.differ('SELECT i, tag, event_ts FROM t.many_labels', ARRAY['tv6.w']) AS many_text;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE w IS NOT DISTINCT FROM CASE WHEN doc_id % 2 = 1 OR event_ts < '2026-01-01 10:00' THEN NULL
                                                        WHEN event_ts < '2026-01-02 06:00' THEN doc_id * 10 + 0
                                                        ELSE doc_id * 10 + 1 END) AS as_computed,
       count(w) AS with_w
  FROM fstore.as_of_join('SELECT i, doc_id, event_ts FROM t.many_labels', ARRAY['tv5.w'])
    AS t(i int, doc_id bigint, event_ts timestamptz, w int);
SELECT count(*) AS rows,
       count(*) FILTER (WHERE w IS NOT DISTINCT FROM CASE WHEN substr(tag, 2)::int % 2 = 1 OR event_ts < '2026-01-01 10:00' THEN NULL
                                                        WHEN event_ts < '2026-01-02 06:00' THEN substr(tag, 2)::int * 10 + 0
                                                        ELSE substr(tag, 2)::int * 10 + 1 END) AS as_computed,
       count(w) AS with_w
  FROM fstore.as_of_join('SELECT i, tag, event_ts FROM t.many_labels', ARRAY['tv6.w'])
    AS t(i int, tag text, event_ts timestamptz, w int);
SET fstore.training_work_mem = '1MB';
SELECT t.differ('SELECT i, doc_id, event_ts FROM t.many_labels', ARRAY['tv5.w']) AS many_int_chunked,
       t.differ('SELECT i, tag, event_ts FROM t.many_labels', ARRAY['tv6.w']) AS many_text_chunked;
RESET fstore.training_work_mem;

-- winners that are heap-only tuples (the history updated in place: an
-- index fetch from a HOT chain's root does not reach them, so they are
-- read at their exact TID), dead row versions among them, and blocks
-- without winners between runs of blocks with them (keys 0-199, 400-599,
-- ... have entity rows; about 30 history rows a page)
SELECT fs_create_feature_view('tv7', 'doc', 'w int, pad text');
ALTER TABLE fstore_offline.tv7 SET (fillfactor = 50);
INSERT INTO fstore_offline.tv7 (doc_id, event_ts, w, pad, created_at)
SELECT k, '2026-01-01'::timestamptz + h * interval '1 hour', k * 10 + h / 20, repeat('p', 100), '2026-02-01'
  FROM generate_series(0, 1999) k, (VALUES (10), (30)) v(h)
 ORDER BY k, h;
BEGIN;
UPDATE fstore_offline.tv7 SET w = -w WHERE doc_id % 3 = 0;
SELECT pg_stat_get_xact_tuples_updated('fstore_offline.tv7'::regclass) AS updated,
       pg_stat_get_xact_tuples_hot_updated('fstore_offline.tv7'::regclass) AS hot_updated;
COMMIT;
CREATE TABLE t.gap_labels AS
SELECT i, (i % 2000)::bigint AS doc_id, '2026-01-01'::timestamptz + (i % 48) * interval '1 hour' AS event_ts
  FROM generate_series(1, 4000) i
 WHERE (i % 2000) / 200 % 2 = 0;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE w IS NOT DISTINCT FROM
                        CASE WHEN event_ts < '2026-01-01 10:00' THEN NULL
                             ELSE (doc_id * 10 + CASE WHEN event_ts < '2026-01-02 06:00' THEN 0 ELSE 1 END)
                                  * CASE WHEN doc_id % 3 = 0 THEN -1 ELSE 1 END END) AS as_computed,
       count(w) AS with_w, count(w) FILTER (WHERE w < 0) AS updated_w
  FROM fstore.as_of_join('SELECT i, doc_id, event_ts FROM t.gap_labels', ARRAY['tv7.w'])
    AS t(i int, doc_id bigint, event_ts timestamptz, w int);
SELECT t.differ('SELECT i, doc_id, event_ts FROM t.gap_labels', ARRAY['tv7.*']) AS gaps;
SET fstore.training_work_mem = '1MB';
SELECT t.differ('SELECT i, doc_id, event_ts FROM t.gap_labels', ARRAY['tv7.*', 'tv5.w AS w5']) AS gaps_chunked;
RESET fstore.training_work_mem;

-- reproducible sets: history written after created_before is left out
SELECT clock_timestamp() AS cut \gset
SELECT * FROM fs_write('tv1', ARRAY[ROW(1, 12, 'after', '2026-01-04')]::fstore_online.tv1[]);
SELECT fs_create_training_set('ts5', 'SELECT doc_id, event_ts FROM t.labels WHERE row_no = 8',
    ARRAY['tv1.a'], created_before => :'cut');
SELECT fs_create_training_set('ts6', 'SELECT doc_id, event_ts FROM t.labels WHERE row_no = 8',
    ARRAY['tv1.a']);
SELECT (SELECT a FROM fstore_training.ts5) AS before_cut, (SELECT a FROM fstore_training.ts6) AS now;
SELECT t.differ('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'], :'cut') AS differ_cut;

-- the hash strategy's function, called directly
SELECT * FROM fstore.as_of_join('SELECT 1::bigint AS doc_id, ''2026-01-02''::timestamptz AS event_ts', ARRAY['tv1.a AS x'])
    AS t(doc_id bigint, event_ts timestamptz, x int);
SELECT t.err($$SELECT * FROM fstore.as_of_join('SELECT 1::bigint AS doc_id, now() AS event_ts', ARRAY['tv1.a']) AS t(doc_id bigint, event_ts timestamptz)$$);
SELECT t.err($$SELECT * FROM fstore.as_of_join('SELECT 1::bigint AS doc_id, now() AS event_ts', ARRAY['tv1.a']) AS t(doc_id bigint, event_ts timestamptz, a text)$$);
SELECT t.err($$SELECT * FROM fstore.as_of_join('SELECT 1::bigint AS doc_id, now() AS event_ts', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT * FROM fstore.as_of_join('SELECT 1 AS doc_id, now() AS event_ts', ARRAY['tv1.a']) AS t(doc_id int, event_ts timestamptz, a int)$$);
SELECT t.err($$SELECT * FROM fstore.as_of_join(NULL, ARRAY['tv1.a']) AS t(doc_id bigint, event_ts timestamptz, a int)$$);
-- it reads the history directly, so it checks the caller's privileges
CREATE ROLE fs_analyst;
GRANT USAGE ON SCHEMA t TO fs_analyst;
GRANT SELECT ON t.labels TO fs_analyst;
SET ROLE fs_analyst;
SELECT t.err($$SELECT * FROM fstore.as_of_join('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a']) AS t(doc_id bigint, event_ts timestamptz, a int)$$);
SELECT t.err($$SELECT count(*) FROM ($$ || fs_training_set_query('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'], strategy => 'lateral') || $$) x$$);
RESET ROLE;
GRANT SELECT ON fstore_offline.tv1 TO fs_analyst;
SET ROLE fs_analyst;
SELECT count(a) FROM fstore.as_of_join('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a']) AS t(doc_id bigint, event_ts timestamptz, a int);
RESET ROLE;
REVOKE ALL ON fstore_offline.tv1 FROM fs_analyst;
REVOKE ALL ON t.labels FROM fs_analyst;
REVOKE ALL ON SCHEMA t FROM fs_analyst;
DROP ROLE fs_analyst;

-- errors
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT row_no, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.nosuch'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['nosuch.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id::text AS doc_id, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts::text AS event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts, label AS a FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a', 'tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts, row_no AS x, label AS x FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY[]::text[])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'DELETE FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'], strategy => 'fast')$$);
SELECT t.err($$SELECT fs_create_training_set('Bad', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('ts1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_drop_training_set('nosuch')$$);
SELECT fs_drop_training_set('ts5');
SELECT to_regclass('fstore_training.ts5');
