-- Correct under any workload: regressions of what random workloads found
-- (fetch boundaries in query writes, retries of failed stream batches,
-- types without equality, infinite times, triggers that rewrite keys,
-- retyped columns, unclear errors).

SELECT fs_create_entity('rb', 'doc_id bigint');
-- this file drains queues itself
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone() AS workers;

-- ---------------------------------------------------------------------------
-- 1. fs_write_query reads its query in fetches of 10,000 rows and holds
--    back the last key of each fetch: a fetch made only of held-back rows.
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('rb_h', 'rb', 'a int');
-- one key with 10,001 rows: the second fetch holds only that key
SELECT * FROM fs_write_query('rb_h', $$SELECT 1, g, timestamptz '2026-01-01' + g * interval '1 s'
                                         FROM generate_series(1, 10001) g$$);
SELECT count(*), min(event_ts), max(event_ts), count(DISTINCT a) FROM fstore_offline.rb_h;
SELECT doc_id, a, event_ts FROM fstore_online.rb_h;
-- the last fetch holds only the last key's rows
SELECT fs_create_feature_view('rb_m', 'rb', 'a int');
SELECT * FROM fs_write_query('rb_m', $$SELECT k, 1, timestamptz '2026-01-01' FROM generate_series(1, 10000) k
                                      UNION ALL SELECT 10000, 1, '2026-01-02'$$);
SELECT doc_id, a, event_ts FROM fstore_online.rb_m WHERE doc_id = 10000;
SELECT count(*), min(event_ts), max(event_ts) FROM fstore_offline.rb_m;
SELECT * FROM fs_write_query('rb_m', $$SELECT 10000, g % 3, timestamptz '2026-01-03' + g * interval '1 s'
                                        FROM generate_series(1, 25000) g$$);
SELECT count(*) FROM fstore_offline.rb_m WHERE doc_id = 10000;

-- ---------------------------------------------------------------------------
-- 2. A failed stream batch is retried by halves: the bad event is a dead
--    letter, every other event is applied as one batch would apply it.
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('rb_s', 'rb', 'a int');
ALTER TABLE fstore_offline.rb_s ADD CONSTRAINT a_positive CHECK (a > 0);
INSERT INTO fstore_stream.rb_s
SELECT g % 50, CASE WHEN g = 1234 THEN -1 ELSE g END, timestamptz '2026-01-01' + g * interval '1 s'
  FROM generate_series(1, 4000) g;
SELECT events, applied, dead_letters, written, unchanged, late FROM fs_stream_apply('rb_s');
SELECT event ->> 'a' AS a, sqlstate, error FROM fstore.dead_letters WHERE view_name = 'rb_s';
-- the online row of each key is its last event
SELECT count(*) FROM fstore_online.rb_s o
  JOIN (SELECT DISTINCT ON (g % 50) g % 50 AS k, g AS a FROM generate_series(1, 4000) g
         ORDER BY g % 50, g DESC) e ON e.k = o.doc_id AND e.a = o.a;
SELECT count(*) FROM fstore_offline.rb_s;
SELECT last_event_ts FROM fstore.freshness WHERE view_name = 'rb_s';

-- ---------------------------------------------------------------------------
-- 3. Types without an equality operator are equal when their values are,
--    compression aside: a re-sent json, xml or point is unchanged.
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('rb_j', 'rb', 'j json, x xml, p point');
SELECT * FROM fs_write('rb_j', ARRAY[ROW(1, json_build_object('t', repeat('abc', 2000)),
    xmlelement(name t, repeat('x', 3000)), point(1, 2), '2026-01-01')]::fstore_online.rb_j[]);
SELECT * FROM fs_write('rb_j', ARRAY[ROW(1, json_build_object('t', repeat('abc', 2000)),
    xmlelement(name t, repeat('x', 3000)), point(1, 2), '2026-01-02')]::fstore_online.rb_j[]);
SELECT * FROM fs_write_query('rb_j', $$SELECT 1, json_build_object('t', repeat('abc', 2000)),
    xmlelement(name t, repeat('x', 3000)), point(1, 2), timestamptz '2026-01-03'$$);
SELECT * FROM fs_write('rb_j', ARRAY[ROW(1, json_build_object('t', repeat('abd', 2000)),
    xmlelement(name t, repeat('x', 3000)), point(1, 2), '2026-01-04')]::fstore_online.rb_j[]);
SELECT count(*) FROM fstore_offline.rb_j;

-- ---------------------------------------------------------------------------
-- 4. Infinite times are refused: they would freeze a key for ever.
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('rb_i', 'rb', 'a int');
SELECT t.err($$SELECT fs_write('rb_i', ARRAY[ROW(1, 1, 'infinity')]::fstore_online.rb_i[])$$);
SELECT t.err($$SELECT fs_write('rb_i', ARRAY[ROW(1, 1, '-infinity')]::fstore_online.rb_i[])$$);
SELECT t.err($$SELECT fs_write_query('rb_i', 'SELECT 1, 1, ''infinity''::timestamptz')$$);
INSERT INTO fstore_stream.rb_i VALUES (1, 1, 'infinity'), (2, 2, '2026-01-01');
-- the monitoring views still work with an infinite time queued
SELECT view_name, queue_depth, queue_lag IS NULL AS no_lag FROM fstore.freshness WHERE view_name = 'rb_i';
SELECT count(*) >= 0 AS ok FROM fs_check_freshness();
SELECT events, applied, dead_letters FROM fs_stream_apply('rb_i');
SELECT event ->> 'event_ts' AS event_ts, sqlstate FROM fstore.dead_letters WHERE view_name = 'rb_i';
SELECT doc_id, a FROM fstore_online.rb_i;

-- ---------------------------------------------------------------------------
-- 5. A BEFORE ROW trigger that rewrites the key: the cache never serves
--    "absent" for the key the table now holds.
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('rb_t', 'rb', 'a int');
CREATE FUNCTION t.shift_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.doc_id := NEW.doc_id + 100; RETURN NEW; END $$;
CREATE TRIGGER shift BEFORE INSERT ON fstore_online.rb_t FOR EACH ROW EXECUTE FUNCTION t.shift_key();
-- warm the cache with "absent" for 101
SELECT doc_id, a FROM fs_get_many(NULL::fstore_online.rb_t, ARRAY[1, 101]::bigint[]);
SELECT written FROM fs_write('rb_t', ARRAY[ROW(1, 7, '2026-01-01')]::fstore_online.rb_t[]);
SELECT doc_id, a FROM fs_get_many(NULL::fstore_online.rb_t, ARRAY[1, 101]::bigint[]);
SELECT doc_id, a FROM fstore_online.rb_t;

-- ---------------------------------------------------------------------------
-- 6. Retyped columns are clear errors, never a crash; what does not use
--    the retyped table keeps working; changing the type back repairs it.
-- ---------------------------------------------------------------------------
SELECT fs_create_feature_view('rb_r', 'rb', 'a int, b text');
SELECT written FROM fs_write('rb_r', ARRAY[ROW(1, 1, 'x', '2026-01-01')]::fstore_online.rb_r[]);
-- the online key column
ALTER TABLE fstore_online.rb_r ALTER COLUMN doc_id TYPE int;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rb_r, ARRAY[1]::bigint[])$$);
SELECT t.err($$SELECT fs_write('rb_r', ARRAY[ROW(1, 2, 'y', '2026-01-02')]::fstore_online.rb_r[])$$);
SELECT t.err($$SELECT fs_write_query('rb_r', 'SELECT 1::bigint, 2, ''y'', now()')$$);
ALTER TABLE fstore_online.rb_r ALTER COLUMN doc_id TYPE bigint;
SELECT doc_id, a, b FROM fs_get_many(NULL::fstore_online.rb_r, ARRAY[1]::bigint[]);
-- a history column
ALTER TABLE fstore_offline.rb_r ALTER COLUMN a TYPE bigint;
SELECT t.err($$SELECT fs_write('rb_r', ARRAY[ROW(1, 2, 'y', '2026-01-02')]::fstore_online.rb_r[])$$);
SELECT t.err($$SELECT fs_create_training_set('rb_ts', 'SELECT 1::bigint AS doc_id, now() AS event_ts', ARRAY['rb_r.a'], strategy => 'hash')$$);
SELECT doc_id, a, b FROM fs_get_many(NULL::fstore_online.rb_r, ARRAY[1]::bigint[]);
ALTER TABLE fstore_offline.rb_r ALTER COLUMN a TYPE int;
SELECT written FROM fs_write('rb_r', ARRAY[ROW(1, 2, 'y', '2026-01-02')]::fstore_online.rb_r[]);
-- a queue column
ALTER TABLE fstore_stream.rb_r ALTER COLUMN b TYPE int USING NULL;
INSERT INTO fstore_stream.rb_r VALUES (2, 2, 5, '2026-01-03');
SELECT t.err($$SELECT fs_stream_apply('rb_r')$$);
SELECT count(*) FROM fstore_stream.rb_r;
SELECT doc_id, a, b FROM fs_get_many(NULL::fstore_online.rb_r, ARRAY[1]::bigint[]);
SELECT written FROM fs_write('rb_r', ARRAY[ROW(1, 3, 'z', '2026-01-04')]::fstore_online.rb_r[]);
ALTER TABLE fstore_stream.rb_r ALTER COLUMN b TYPE text;
SELECT events, applied FROM fs_stream_apply('rb_r');
-- a queue that is not a table any more
ALTER TABLE fstore_stream.rb_r RENAME TO rb_r_saved;
CREATE VIEW fstore_stream.rb_r AS SELECT * FROM fstore_stream.rb_r_saved;
SELECT t.err($$SELECT fs_stream_apply('rb_r')$$);
SELECT view_name, queue_depth FROM fstore.stats WHERE view_name = 'rb_r';
DROP VIEW fstore_stream.rb_r;
ALTER TABLE fstore_stream.rb_r_saved RENAME TO rb_r;
-- the composite key type of an entity
SELECT fs_create_entity('rb_ud', 'user_id bigint, doc_id bigint');
SELECT fs_create_feature_view('rb_udv', 'rb_ud', 'a int');
SELECT written FROM fs_write('rb_udv', ARRAY[ROW(1, 2, 3, '2026-01-01')]::fstore_online.rb_udv[]);
ALTER TYPE fstore.rb_ud_key ALTER ATTRIBUTE doc_id TYPE int;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rb_udv, ARRAY[(1, 2)]::fstore.rb_ud_key[])$$);
ALTER TYPE fstore.rb_ud_key ALTER ATTRIBUTE doc_id TYPE bigint;
SELECT user_id, doc_id, a FROM fs_get_many(NULL::fstore_online.rb_udv, ARRAY[(1, 2)]::fstore.rb_ud_key[]);
-- the catalog's own key type column
ALTER TABLE fstore.entities ALTER COLUMN key_type TYPE text;
SELECT doc_id, a FROM fs_get_many(NULL::fstore_online.rb_r, ARRAY[1]::bigint[]);
ALTER TABLE fstore.entities ALTER COLUMN key_type TYPE regtype USING key_type::regtype;

-- ---------------------------------------------------------------------------
-- 9. Errors say what the user wrote, not what fstore wrapped it in.
-- ---------------------------------------------------------------------------
SELECT t.err($$SELECT fs_create_feature_view('rb_e', 'rb', 'a int,')$$);
SELECT t.err($$SELECT fs_create_feature_view('rb_e', 'rb', 'a int b')$$);
SELECT fs_create_feature_view('rb_c', 'rb', 'a int -- the count');
SELECT name, type FROM fstore.features WHERE view_name = 'rb_c';
SELECT t.err($$SELECT fs_write_query('rb_c', 'SELECT 1, 2, now( FROM x')$$);
SELECT t.err($$SELECT fs_write_query('rb_c', 'WITH d AS (DELETE FROM fstore_online.rb_c RETURNING *) SELECT 1::bigint, 1, now()')$$);
-- a query that writes the view it is applied to
CREATE FUNCTION t.rows_and_write() RETURNS TABLE (k bigint, a int, ts timestamptz) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO fstore_online.rb_c VALUES (5, 5, '2026-01-01');
    RETURN QUERY SELECT 5::bigint, 6, '2026-01-02'::timestamptz;
END $$;
SELECT t.err($$SELECT fs_write_query('rb_c', 'SELECT * FROM t.rows_and_write()')$$);
SELECT count(*) FROM fstore_online.rb_c;

SELECT fs_drop_feature_view(v) FROM unnest(ARRAY['rb_h', 'rb_m', 'rb_s', 'rb_j', 'rb_i', 'rb_t',
    'rb_r', 'rb_udv', 'rb_c']) v;
SELECT fs_drop_entity('rb_ud');
SELECT fs_drop_entity('rb');
ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
