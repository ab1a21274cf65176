-- fs_write / fs_write_query: the change-detecting upsert.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

SELECT fs_create_entity('item', 'item_id bigint');
SELECT fs_create_feature_view('iv', 'item', 'a int, b text, v real[]');
CREATE VIEW t.iv_online AS SELECT * FROM fstore_online.iv ORDER BY item_id;
CREATE VIEW t.iv_hist AS
    SELECT item_id, event_ts, a, b, v FROM fstore_offline.iv
     ORDER BY item_id, event_ts, created_at;

-- new keys are written: online row and one history row each
SELECT * FROM fs_write('iv', ARRAY[
    ROW(1, 10, 'x', '{1,2}', '2026-01-01'),
    ROW(2, 20, 'y', NULL, '2026-01-01')]::fstore_online.iv[]);
SELECT * FROM t.iv_online;
SELECT * FROM t.iv_hist;

-- equal features, newer event_ts: unchanged; no history; no ttl, so the
-- online event_ts stays
SELECT * FROM fs_write('iv', ARRAY[ROW(1, 10, 'x', '{1,2}', '2026-01-02')]::fstore_online.iv[]);
SELECT item_id, event_ts FROM t.iv_online;
SELECT count(*) FROM fstore_offline.iv;

-- IS NOT DISTINCT FROM: NULL = NULL, -0 = 0, NaN = NaN; NULL <> '{}'
SELECT * FROM fs_write('iv', ARRAY[ROW(2, 20, 'y', NULL, '2026-01-02')]::fstore_online.iv[]);
SELECT * FROM fs_write('iv', ARRAY[ROW(2, 20, 'y', '{}', '2026-01-03')]::fstore_online.iv[]);
SELECT * FROM fs_write('iv', ARRAY[ROW(5, 1, 'z', '{0,NaN}', '2026-01-01')]::fstore_online.iv[]);
SELECT * FROM fs_write('iv', ARRAY[ROW(5, 1, 'z', '{-0,NaN}', '2026-01-02')]::fstore_online.iv[]);

-- a change: written
SELECT * FROM fs_write('iv', ARRAY[ROW(1, 11, 'x', '{1,2}', '2026-01-03')]::fstore_online.iv[]);
SELECT * FROM t.iv_online;

-- late and different: history only, online untouched
SELECT * FROM fs_write('iv', ARRAY[ROW(1, 99, 'x', '{1,2}', '2026-01-02 12:00')]::fstore_online.iv[]);
-- late and equal to the value in effect then (the 01-01 row): unchanged
SELECT * FROM fs_write('iv', ARRAY[ROW(1, 10, 'x', '{1,2}', '2026-01-02')]::fstore_online.iv[]);
-- late, before any history of the key: late
SELECT * FROM fs_write('iv', ARRAY[ROW(1, 11, 'x', '{1,2}', '2025-12-31')]::fstore_online.iv[]);
SELECT * FROM t.iv_online WHERE item_id = 1;
SELECT * FROM t.iv_hist WHERE item_id = 1;

-- replaying the whole history changes nothing
SELECT * FROM fs_write('iv', (SELECT array_agg(ROW(item_id, a, b, v, event_ts)::fstore_online.iv)
                                FROM fstore_offline.iv));
SELECT count(*) FROM fstore_offline.iv;

-- several rows of one key in one call, in any order: applied in event_ts
-- order, each compared with the one before; every change is kept
SELECT * FROM fs_write('iv', ARRAY[
    ROW(3, 1, 'c', NULL, '2026-01-03'),
    ROW(3, 1, 'a', NULL, '2026-01-01'),
    ROW(3, 2, 'b', NULL, '2026-01-02'),
    ROW(3, 2, 'b', NULL, '2026-01-02 06:00')]::fstore_online.iv[]);
SELECT * FROM t.iv_hist WHERE item_id = 3;
SELECT * FROM t.iv_online WHERE item_id = 3;

-- rows of one key with the same event_ts: the last one wins
SELECT * FROM fs_write('iv', ARRAY[
    ROW(4, 1, 'first', NULL, '2026-01-01'),
    ROW(4, 2, 'second', NULL, '2026-01-01')]::fstore_online.iv[]);
SELECT * FROM t.iv_hist WHERE item_id = 4;
-- replayed: unchanged
SELECT * FROM fs_write('iv', ARRAY[
    ROW(4, 1, 'first', NULL, '2026-01-01'),
    ROW(4, 2, 'second', NULL, '2026-01-01')]::fstore_online.iv[]);
-- same event_ts as online, different value: written (not late)
SELECT * FROM fs_write('iv', ARRAY[ROW(4, 3, 'third', NULL, '2026-01-01')]::fstore_online.iv[]);
SELECT a, b FROM t.iv_online WHERE item_id = 4;

-- bad rows: 23502 and nothing of the call is applied
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(100, 1, 'ok', NULL, '2026-01-01'), ROW(NULL, 1, 'k', NULL, '2026-01-01')]::fstore_online.iv[])$$);
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(100, 1, 'ok', NULL, '2026-01-01'), ROW(101, 1, 'k', NULL, NULL)]::fstore_online.iv[])$$);
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(100, 1, 'ok', NULL, '2026-01-01'), NULL]::fstore_online.iv[])$$);
SELECT count(*) FROM fstore_online.iv WHERE item_id >= 100;
SELECT t.err($$SELECT fs_write('iv', ARRAY[1, 2])$$);
SELECT t.err($$SELECT fs_write('nosuch', ARRAY[ROW(1, 1, 'k', NULL, now())]::fstore_online.iv[])$$);
SELECT t.err($$SELECT fs_write(NULL, ARRAY[ROW(1, 1, 'k', NULL, now())]::fstore_online.iv[])$$);
SELECT * FROM fs_write('iv', NULL::fstore_online.iv[]);
SELECT * FROM fs_write('iv', '{}'::fstore_online.iv[]);

-- a constraint a user adds is enforced; the whole call fails
ALTER TABLE fstore_online.iv ADD CONSTRAINT a_small CHECK (a < 1000);
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(200, 1, 'ok', NULL, '2026-01-01'), ROW(201, 5000, 'big', NULL, '2026-01-01')]::fstore_online.iv[])$$);
SELECT count(*) FROM fstore_offline.iv WHERE item_id >= 200;
ALTER TABLE fstore_online.iv DROP CONSTRAINT a_small;

-- two calls in one statement see each other
SELECT g, w.* FROM generate_series(1, 4) g,
    LATERAL fs_write('iv', ARRAY[ROW(300 + g % 2, g, 'loop', NULL, '2026-01-01'::timestamptz + g * interval '1 hour')]::fstore_online.iv[]) w;
SELECT * FROM t.iv_hist WHERE item_id >= 300;

-- a ttl view: confirming an unchanged value moves event_ts forward
SELECT fs_create_feature_view('ttlv', 'item', 'a int', ttl => interval '1 day');
SELECT * FROM fs_write('ttlv', ARRAY[ROW(1, 5, '2026-01-01')]::fstore_online.ttlv[]);
SELECT * FROM fs_write('ttlv', ARRAY[ROW(1, 5, '2026-01-05')]::fstore_online.ttlv[]);
SELECT * FROM fstore_online.ttlv;
SELECT count(*) FROM fstore_offline.ttlv;

-- plain DML on the online table still works; fs_write then sees it
INSERT INTO fstore_online.iv VALUES (400, 1, 'dml', NULL, '2026-01-01');
SELECT * FROM fs_write('iv', ARRAY[ROW(400, 1, 'dml', NULL, '2026-01-02')]::fstore_online.iv[]);
UPDATE fstore_online.iv SET a = 2 WHERE item_id = 400;
SELECT * FROM fs_write('iv', ARRAY[ROW(400, 2, 'dml', NULL, '2026-01-03')]::fstore_online.iv[]);
DELETE FROM fstore_online.iv WHERE item_id = 400;
SELECT * FROM fs_write('iv', ARRAY[ROW(400, 2, 'dml', NULL, '2026-01-04')]::fstore_online.iv[]);
SELECT * FROM t.iv_online WHERE item_id = 400;

-- composite keys
SELECT fs_create_feature_view('ud', 'user_doc', 'clicks int');
SELECT * FROM fs_write('ud', ARRAY[ROW(1, 10, 3, '2026-01-01'), ROW(1, 11, 4, '2026-01-01'),
                                   ROW(2, 10, 5, '2026-01-01'), ROW(1, 10, 3, '2026-01-02')]::fstore_online.ud[]);
SELECT * FROM fstore_online.ud ORDER BY 1, 2;

-- fs_write_query: columns by position, cast to the view's types, any order
CREATE TABLE t.staging (id int, a text, b varchar, v float8[], ts timestamptz);
INSERT INTO t.staging VALUES (500, '1', 'q', '{1.5}', '2026-01-02'), (500, '1', 'q', '{1.5}', '2026-01-01'),
                             (501, '7', NULL, NULL, '2026-01-01');
SELECT * FROM fs_write_query('iv', 'SELECT id, a, b, v, ts FROM t.staging');
SELECT * FROM t.iv_online WHERE item_id >= 500;
SELECT * FROM fs_write_query('iv', 'SELECT id, a, b, v, ts FROM t.staging;');
SELECT t.err($$SELECT fs_write_query('iv', 'SELECT id, a FROM t.staging')$$);
SELECT t.err($$SELECT fs_write_query('iv', 'DELETE FROM t.staging')$$);
SELECT t.err($$SELECT fs_write_query('iv', 'SELECT 1; SELECT 2')$$);
SELECT t.err($$SELECT fs_write_query('iv', 'SELECT id, a, b, v, ts FROM t.staging) q; DROP TABLE t.staging; --')$$);
SELECT t.err($$SELECT fs_write_query('iv', 'SELECT id, a, b, v, NULL::timestamptz FROM t.staging')$$);
-- a trailing line comment cannot swallow what fstore wraps around the query
SELECT * FROM fs_write_query('iv', 'SELECT 700, 1, NULL, NULL, ''2026-01-01''::timestamptz --');
SELECT t.err($$SELECT fs_write_query('iv', NULL)$$);
SELECT count(*) FROM t.staging;

-- rows of one key with the same event_ts: the query's last row wins
SELECT * FROM fs_write_query('iv', $q$SELECT * FROM (VALUES (800, 1, 'a', NULL::real[], '2026-01-01'::timestamptz),
    (800, 2, 'b', NULL, '2026-01-01'), (800, 3, 'c', NULL, '2026-01-01')) v$q$);
SELECT a, b FROM t.iv_online WHERE item_id = 800;
SELECT * FROM fs_write_query('iv', $q$SELECT * FROM (VALUES (801, 3, 'c', NULL::real[], '2026-01-01'::timestamptz),
    (801, 2, 'b', NULL, '2026-01-01'), (801, 1, 'a', NULL, '2026-01-01')) v$q$);
SELECT a, b FROM t.iv_online WHERE item_id = 801;
-- errors name rows by their position in the query
SELECT t.err($q$SELECT fs_write_query('iv', 'SELECT * FROM (VALUES (900, 1, ''a'', NULL::real[], now()), (NULL, 1, ''a'', NULL, now())) v')$q$);

-- fs_write_query over more rows than one chunk, with keys spanning chunks:
-- five keys, 5000 alternating versions each
SELECT * FROM fs_write_query('iv',
    $q$SELECT g % 5 + 1000, (g / 5) % 2, 'chunk', NULL, '2026-01-01'::timestamptz + (g / 5) * interval '1 minute'
         FROM generate_series(0, 24999) g$q$);
SELECT item_id, count(*) FROM fstore_offline.iv WHERE item_id >= 1000 GROUP BY 1 ORDER BY 1;
SELECT item_id, a, event_ts FROM t.iv_online WHERE item_id >= 1000;

-- privileges: writing needs SELECT, INSERT and UPDATE on the online table
-- and SELECT and INSERT on the history (the counts reveal what is stored)
CREATE ROLE fs_reader;
GRANT SELECT ON fstore_online.iv TO fs_reader;
SET ROLE fs_reader;
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(1, 1, 'k', NULL, now())]::fstore_online.iv[])$$);
RESET ROLE;
GRANT INSERT, UPDATE ON fstore_online.iv TO fs_reader;
SET ROLE fs_reader;
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(1, 1, 'k', NULL, now())]::fstore_online.iv[])$$);
RESET ROLE;
GRANT INSERT ON fstore_offline.iv TO fs_reader;
SET ROLE fs_reader;
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(1, 1, 'k', NULL, now())]::fstore_online.iv[])$$);
RESET ROLE;
GRANT SELECT ON fstore_offline.iv TO fs_reader;
REVOKE SELECT ON fstore_online.iv FROM fs_reader;
SET ROLE fs_reader;
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(1, 1, 'k', NULL, now())]::fstore_online.iv[])$$);
RESET ROLE;
GRANT SELECT ON fstore_online.iv TO fs_reader;
SET ROLE fs_reader;
SELECT t.err($$SELECT fs_write('iv', ARRAY[ROW(600, 1, 'k', NULL, '2026-01-01')]::fstore_online.iv[])$$);
-- fstore.stats works for a role that cannot read the queue tables
SELECT count(*) > 0 FROM fstore.stats;
RESET ROLE;
REVOKE ALL ON fstore_online.iv, fstore_offline.iv FROM fs_reader;
DROP ROLE fs_reader;

-- a stored history row's created_at is set by the write
SELECT count(*) FROM fstore_offline.iv WHERE created_at IS NULL OR created_at > clock_timestamp();
