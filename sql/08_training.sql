-- Training sets: point-in-time joins over the offline history, checked
-- against rows computed by hand.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

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
SELECT fs_create_training_set('ts1_merge', 'SELECT row_no, doc_id, event_ts, label FROM t.labels',
    ARRAY['tv1.a', 'tv1.b', 'tv2.c'], strategy => 'merge');
SELECT (SELECT count(*) FROM (SELECT * FROM fstore_training.ts1_lateral EXCEPT ALL SELECT * FROM fstore_training.ts1_merge) x)
     + (SELECT count(*) FROM (SELECT * FROM fstore_training.ts1_merge EXCEPT ALL SELECT * FROM fstore_training.ts1_lateral) x)
       AS differences;
SELECT (SELECT count(*) FROM (SELECT * FROM fstore_training.ts1 EXCEPT ALL SELECT * FROM fstore_training.ts1_merge) x) AS differences;
-- never a value from the future: every feature's history row is at or before
SELECT count(*) AS future_values FROM fstore_training.ts1_merge m
 WHERE m.a IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM fstore_offline.tv1 h WHERE h.doc_id = m.doc_id AND h.a = m.a AND h.event_ts <= m.event_ts);

-- the SQL it runs, readable
SELECT fs_training_set_query('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a', 'tv2.c AS c_recent'], strategy => 'lateral');
SELECT fs_training_set_query('SELECT doc_id, event_ts FROM t.labels', ARRAY['tv2.c'], strategy => 'merge');
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

-- reproducible sets: history written after created_before is left out
SELECT clock_timestamp() AS cut \gset
SELECT * FROM fs_write('tv1', ARRAY[ROW(1, 12, 'after', '2026-01-04')]::fstore_online.tv1[]);
SELECT fs_create_training_set('ts5', 'SELECT doc_id, event_ts FROM t.labels WHERE row_no = 8',
    ARRAY['tv1.a'], created_before => :'cut');
SELECT fs_create_training_set('ts6', 'SELECT doc_id, event_ts FROM t.labels WHERE row_no = 8',
    ARRAY['tv1.a']);
SELECT (SELECT a FROM fstore_training.ts5) AS before_cut, (SELECT a FROM fstore_training.ts6) AS now;

-- errors
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT row_no, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.nosuch'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['nosuch.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id::text AS doc_id, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts::text AS event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts, label AS a FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a', 'tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY[]::text[])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'DELETE FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('e1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'], strategy => 'fast')$$);
SELECT t.err($$SELECT fs_create_training_set('Bad', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_create_training_set('ts1', 'SELECT doc_id, event_ts FROM t.labels', ARRAY['tv1.a'])$$);
SELECT t.err($$SELECT fs_drop_training_set('nosuch')$$);
SELECT fs_drop_training_set('ts5');
SELECT to_regclass('fstore_training.ts5');
