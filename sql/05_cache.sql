-- The hot cache: settings, statistics, coherence within a session, packed
-- answers.  (Races between sessions are in test/isolation.)
\set SHOW_CONTEXT never
SET timezone = 'UTC';

SELECT pg_size_bytes(current_setting('fstore.cache_size')) >= 1024 * 1024 AS sized;
SHOW fstore.cache_enabled;
SELECT size_bytes > 0 AS has_memory, partitions FROM fstore.cache_stats;
SELECT t.err('SET fstore.cache_size = ''1MB''');

SELECT fs_create_feature_view('cv', 'item', 'a int, b text');
SELECT * FROM fs_write('cv', ARRAY[ROW(1, 10, 'x', '2026-01-01'), ROW(2, 20, 'y', '2026-01-01')]::fstore_online.cv[]);
SELECT fs_reset_stats();

-- first read misses and fills, the second hits; absent keys are cached too
SELECT item_id, a, b FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1, 2, 3]::bigint[]);
SELECT item_id, a, b FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1, 2, 3]::bigint[]);
SELECT lookups, keys_requested, cache_hits, cache_misses FROM fstore.stats WHERE view_name = 'cv';

-- with the cache off, reads go to the table
SET fstore.cache_enabled = off;
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);
RESET fstore.cache_enabled;
SELECT cache_hits, cache_misses FROM fstore.stats WHERE view_name = 'cv';

-- a committed fs_write is seen by the next read
SELECT * FROM fs_write('cv', ARRAY[ROW(1, 11, 'x', '2026-01-02')]::fstore_online.cv[]);
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1, 2]::bigint[]);
-- a key that was cached as absent appears once written
SELECT * FROM fs_write('cv', ARRAY[ROW(3, 30, 'z', '2026-01-01')]::fstore_online.cv[]);
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[3]::bigint[]);

-- inside a transaction that wrote, reads see its own changes; after a
-- rollback, the cache still serves the committed value
BEGIN;
SELECT * FROM fs_write('cv', ARRAY[ROW(1, 99, 'x', '2026-01-03')]::fstore_online.cv[]);
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);
ROLLBACK;
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);
-- a rolled-back savepoint leaves nothing behind
BEGIN;
SAVEPOINT s;
SELECT * FROM fs_write('cv', ARRAY[ROW(2, 77, 'y', '2026-01-03')]::fstore_online.cv[]);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[2]::bigint[]);

-- plain DML and TRUNCATE invalidate the view
UPDATE fstore_online.cv SET a = 12 WHERE item_id = 1;
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);
DELETE FROM fstore_online.cv WHERE item_id = 2;
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[2]::bigint[]);
INSERT INTO fstore_online.cv VALUES (2, 21, 'y', '2026-01-04');
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[2]::bigint[]);
TRUNCATE fstore_online.cv;
SELECT count(a) FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1, 2, 3]::bigint[]);
SELECT * FROM fs_write('cv', ARRAY[ROW(1, 13, 'x', '2026-01-05')]::fstore_online.cv[]);
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);

-- a column added to the online table (with a default) shows in cached rows
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);
ALTER TABLE fstore_online.cv ADD COLUMN note text DEFAULT 'n/a';
SELECT item_id, a, note FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);
ALTER TABLE fstore_online.cv DROP COLUMN note;
SELECT * FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);

-- a view dropped and created again under the same name starts empty
SELECT fs_drop_feature_view('cv');
SELECT fs_create_feature_view('cv', 'item', 'a int, b text');
SELECT item_id, a, b FROM fs_get_many(NULL::fstore_online.cv, ARRAY[1]::bigint[]);

-- ttl is applied to cached rows at read time
SELECT fs_create_feature_view('cv_ttl', 'item', 'a int', ttl => interval '1 hour');
SELECT * FROM fs_write('cv_ttl', ARRAY[ROW(1, 1, now() - interval '30 minutes'),
                                       ROW(2, 2, now() - interval '3 hours')]::fstore_online.cv_ttl[]);
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv_ttl, ARRAY[1, 2]::bigint[]);
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv_ttl, ARRAY[1, 2]::bigint[]);

-- REPEATABLE READ reads its snapshot, not the cache
SELECT * FROM fs_write('cv', ARRAY[ROW(5, 50, 'r', '2026-01-01')]::fstore_online.cv[]);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT item_id, a FROM fs_get_many(NULL::fstore_online.cv, ARRAY[5]::bigint[]);
COMMIT;

-- packed answers: the layout byte for byte on a small example
SELECT fs_create_feature_view('pk', 'item', 'x real, n int, t text, v real[]');
SELECT * FROM fs_write('pk', ARRAY[
    ROW(1, 1.5, 7, 'hi', '{1,2}', '2000-01-01 00:00:01+00'),
    ROW(2, NULL, -1, NULL, NULL, '2000-01-01 00:00:00+00')]::fstore_online.pk[]);
SELECT encode(fs_get_many_packed(NULL::fstore_online.pk, ARRAY[1, 3, 2, NULL]::bigint[]), 'hex');
-- twice: once filled from the table, once from the cache
SELECT fs_get_many_packed(NULL::fstore_online.pk, ARRAY[1, 3, 2, NULL]::bigint[])
     = fs_get_many_packed(NULL::fstore_online.pk, ARRAY[1, 3, 2, NULL]::bigint[]) AS same;
SELECT length(fs_get_many_packed(NULL::fstore_online.pk, '{}'::bigint[]));
SELECT fs_get_many_packed(NULL::fstore_online.pk, NULL::bigint[]) IS NULL AS null_keys;
-- a service, packed: present when any view has the key (header, then the
-- first record's status, its features after event_ts and null bits, and
-- the second record's status)
WITH p AS (SELECT fs_get_many_packed(NULL::fstore_online.ranker_v1, ARRAY[1, 4]::bigint[]) AS b)
SELECT encode(substr(b, 1, 56), 'hex') AS header, get_byte(b, 56) AS first,
       encode(substr(b, 67, 12), 'hex') AS features, get_byte(b, 78) AS second, length(b)
  FROM p;
-- errors are the same as fs_get_many's, plus types that cannot be packed
SELECT t.err($$SELECT fs_get_many_packed(NULL::fstore_online.pk, ARRAY[1]::int[])$$);
SELECT t.err($$SELECT fs_get_many_packed(NULL::int, ARRAY[1]::bigint[])$$);
SELECT fs_create_feature_view('pk_bad', 'item', 'j jsonb');
SELECT t.err($$SELECT fs_get_many_packed(NULL::fstore_online.pk_bad, ARRAY[1]::bigint[])$$);
SET fstore.max_keys_per_call = 2;
SELECT t.err($$SELECT fs_get_many_packed(NULL::fstore_online.pk, ARRAY[1, 2, 3]::bigint[])$$);
RESET fstore.max_keys_per_call;
SELECT fs_write('pk', ARRAY[ROW(4, 1, 1, 'a', '{{1,2},{3,4}}', now())]::fstore_online.pk[]) IS NOT NULL;
SELECT t.err($$SELECT fs_get_many_packed(NULL::fstore_online.pk, ARRAY[4]::bigint[])$$);
-- fixed-size features are packed by copying them from the cached row: the
-- same bytes as packing value by value with the cache off, for rows with
-- and without NULLs, with padding between features, and after a column is
-- added to the online table
SELECT fs_create_feature_view('pkf', 'item',
    'b bool, s smallint, l bigint, r real, d date, ts timestamp, f double precision');
SELECT count(*) FROM fs_write_query('pkf', $$SELECT g, g % 2 = 0, g::int2, g * 100000000000, g / 3.0,
    '2000-01-01'::date + g, '2000-01-01'::timestamp + g * interval '1 s',
    CASE WHEN g % 4 <> 0 THEN g / 7.0 END, '2001-01-01'::timestamptz + g * interval '1 s'
    FROM generate_series(1, 40) g$$);
SET fstore.cache_enabled = off;
CREATE TEMP TABLE pkf_ref AS
SELECT fs_get_many_packed(NULL::fstore_online.pkf, ARRAY[1, 2, 3, 4, 99, NULL, 4, 8, 40]::bigint[]) AS b;
RESET fstore.cache_enabled;
SELECT fs_get_many_packed(NULL::fstore_online.pkf, ARRAY[1, 2, 3, 4, 99, NULL, 4, 8, 40]::bigint[]) = b AS filled
  FROM pkf_ref;
SELECT fs_get_many_packed(NULL::fstore_online.pkf, ARRAY[1, 2, 3, 4, 99, NULL, 4, 8, 40]::bigint[]) = b AS cached
  FROM pkf_ref;
SELECT cache_hits >= 7 AS hits FROM fstore.stats WHERE view_name = 'pkf';
-- records are written by the lookup straight into the answer and closed up
-- after: keys cached and not, absent ones first, repeats, rows with NULLs
SET fstore.cache_enabled = off;
CREATE TEMP TABLE pkf_mix AS
SELECT fs_get_many_packed(NULL::fstore_online.pkf,
                          ARRAY[99, 12, 30, 12, NULL, 16, 31, 99, 30, 15, 32, 12]::bigint[]) AS b;
RESET fstore.cache_enabled;
SELECT length(fs_get_many_packed(NULL::fstore_online.pkf, ARRAY[12, 15, 16]::bigint[])) > 0 AS warmed;
SELECT fs_get_many_packed(NULL::fstore_online.pkf,
                          ARRAY[99, 12, 30, 12, NULL, 16, 31, 99, 30, 15, 32, 12]::bigint[]) = b AS mixed,
       fs_get_many_packed(NULL::fstore_online.pkf,
                          ARRAY[99, 12, 30, 12, NULL, 16, 31, 99, 30, 15, 32, 12]::bigint[]) = b AS mixed_cached
  FROM pkf_mix;
ALTER TABLE fstore_online.pkf ADD COLUMN note text;
SELECT fs_get_many_packed(NULL::fstore_online.pkf, ARRAY[1, 2, 3, 4, 99, NULL, 4, 8, 40]::bigint[]) = b AS after_add
  FROM pkf_ref;
SELECT fs_get_many_packed(NULL::fstore_online.pkf, ARRAY[1, 2, 3, 4, 99, NULL, 4, 8, 40]::bigint[]) = b AS cached_after_add
  FROM pkf_ref;
