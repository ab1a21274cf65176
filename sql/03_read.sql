-- fs_get_many: one row per key, in input order, for views and services.
\set SHOW_CONTEXT never
SET timezone = 'UTC';

SELECT fs_create_feature_view('rd', 'item', 'n int, s text, emb real[]');
SELECT * FROM fs_write('rd', ARRAY[
    ROW(1, 10, 'one', '{0.5,1.5}', '2026-01-01'),
    ROW(2, 20, 'two', NULL, '2026-01-01'),
    ROW(3, NULL, NULL, NULL, '2026-01-01')]::fstore_online.rd[]);

-- input order, duplicates repeated, missing keys with key filled, NULL key
-- as a row of NULLs, a present row whose features are NULL
SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[2, 1, 999, 2, NULL, 3, 1]::bigint[]);
SELECT * FROM fs_get_many(NULL::fstore_online.rd, '{}'::bigint[]);
SELECT * FROM fs_get_many(NULL::fstore_online.rd, NULL::bigint[]);
SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[NULL, NULL]::bigint[]);
-- multi-dimensional arrays are read in storage order
SELECT item_id FROM fs_get_many(NULL::fstore_online.rd, ARRAY[[3, 2], [1, 4]]::bigint[]);
-- in the select list
SELECT fs_get_many(NULL::fstore_online.rd, ARRAY[1, 5]::bigint[]);

-- input order holds for many keys (compared with the positions)
SELECT * FROM fs_write_query('rd', 'SELECT g, g * 2, ''k'' || g, NULL, ''2026-01-01''::timestamptz FROM generate_series(100, 5099) g');
WITH k AS (
    SELECT array_agg((100 + (g * 7919) % 6000)::bigint ORDER BY g) AS keys FROM generate_series(1, 10000) g
), r AS (
    SELECT row_number() OVER () AS i, f.* FROM k, fs_get_many(NULL::fstore_online.rd, k.keys) f
)
SELECT count(*) AS rows,
       bool_and(r.item_id = k.keys[r.i]) AS same_order,
       bool_and((r.n IS NOT NULL) = (r.item_id <= 5099)) AS present_iff_stored,
       bool_and(r.n IS NULL OR r.n = r.item_id * 2) AS right_values
  FROM r, k;

-- the same answer as plain SQL over the online table
WITH k AS (SELECT array_agg((g * 37) % 6000 + 50)::bigint[] AS keys FROM generate_series(1, 500) g)
SELECT count(*) FROM (
    SELECT f.* FROM k, fs_get_many(NULL::fstore_online.rd, k.keys) f
    EXCEPT ALL
    SELECT coalesce(o.item_id, u.key), o.n, o.s, o.emb, o.event_ts
      FROM k, unnest(k.keys) u(key) LEFT JOIN fstore_online.rd o ON o.item_id = u.key
) diff;

-- errors
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1, 2]::int[])$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY['1']::text[])$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rd, 42::bigint)$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::int, ARRAY[1]::bigint[])$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore.entities, ARRAY[1]::bigint[])$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_offline.rd, ARRAY[1]::bigint[])$$);
SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1, 2]::int[]);
SET fstore.max_keys_per_call = 3;
SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1, 2, 3, 4]::bigint[]);
SELECT count(*) FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1, 2, 3]::bigint[]);
RESET fstore.max_keys_per_call;
SHOW fstore.max_keys_per_call;

-- ttl: older values are served as missing
SELECT fs_create_feature_view('rd_ttl', 'item', 'n int', ttl => interval '1 hour');
SELECT * FROM fs_write('rd_ttl', ARRAY[ROW(1, 1, now() - interval '2 hours'),
                                       ROW(2, 2, now() - interval '10 minutes')]::fstore_online.rd_ttl[]);
SELECT item_id, n, event_ts IS NOT NULL AS has_ts
  FROM fs_get_many(NULL::fstore_online.rd_ttl, ARRAY[1, 2]::bigint[]);
-- a confirmation of the unchanged value keeps it alive
SELECT * FROM fs_write('rd_ttl', ARRAY[ROW(1, 1, now())]::fstore_online.rd_ttl[]);
SELECT item_id, n FROM fs_get_many(NULL::fstore_online.rd_ttl, ARRAY[1, 2]::bigint[]);

-- composite keys
SELECT * FROM fs_get_many(NULL::fstore_online.ud,
    ARRAY[(1, 11), (2, 10), (9, 9), NULL, (1, NULL), (1, 10)]::fstore.user_doc_key[]);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.ud, ARRAY[1]::bigint[])$$);

-- text keys
SELECT fs_create_entity('tag', 'tag text');
SELECT fs_create_feature_view('tag_stats', 'tag', 'uses int');
SELECT * FROM fs_write('tag_stats', ARRAY[ROW('b', 2, now()), ROW('a', 1, now()), ROW('A', 3, now())]::fstore_online.tag_stats[]);
SELECT tag, uses FROM fs_get_many(NULL::fstore_online.tag_stats, ARRAY['a', 'A', 'b', 'c', 'a']);

-- services: every view in one call; expired views give NULLs
SELECT * FROM fs_write('doc_stats', ARRAY[ROW(1, 100, 0.5, '{1}', '2026-01-01'),
                                          ROW(2, 200, 0.25, NULL, '2026-01-01')]::fstore_online.doc_stats[]);
SELECT * FROM fs_write('doc_activity', ARRAY[ROW(1, 7, 'fresh', now()),
                                             ROW(2, 8, 'stale', now() - interval '2 days'),
                                             ROW(3, 9, 'only', now())]::fstore_online.doc_activity[]);
SELECT * FROM fs_get_many(NULL::fstore_online.ranker_v1, ARRAY[3, 1, 2, NULL, 4, 1]::bigint[]);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.ranker_v1, ARRAY[1]::int[])$$);

-- privileges: SELECT on the online table (every view, for a service)
CREATE ROLE fs_ro;
SET ROLE fs_ro;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1]::bigint[])$$);
RESET ROLE;
GRANT SELECT ON fstore_online.rd, fstore_online.doc_stats TO fs_ro;
SET ROLE fs_ro;
SELECT item_id, n FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1]::bigint[]);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.ranker_v1, ARRAY[1]::bigint[])$$);
RESET ROLE;
-- column privileges on every column are enough
REVOKE SELECT ON fstore_online.rd FROM fs_ro;
GRANT SELECT (item_id, n, s) ON fstore_online.rd TO fs_ro;
SET ROLE fs_ro;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1]::bigint[])$$);
RESET ROLE;
GRANT SELECT (emb, event_ts) ON fstore_online.rd TO fs_ro;
SET ROLE fs_ro;
SELECT item_id, n FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1]::bigint[]);
RESET ROLE;
REVOKE ALL ON fstore_online.rd, fstore_online.doc_stats FROM fs_ro;
DROP ROLE fs_ro;
-- row-level security is refused rather than bypassed
ALTER TABLE fstore_online.rd ENABLE ROW LEVEL SECURITY;
CREATE ROLE fs_rls;
GRANT SELECT ON fstore_online.rd TO fs_rls;
SET ROLE fs_rls;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1]::bigint[])$$);
RESET ROLE;
ALTER TABLE fstore_online.rd DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON fstore_online.rd FROM fs_rls;
DROP ROLE fs_rls;

-- plain DML on the online table is seen at once
INSERT INTO fstore_online.rd VALUES (7000, 1, 'dml', NULL, now());
SELECT item_id, n, s FROM fs_get_many(NULL::fstore_online.rd, ARRAY[7000]::bigint[]);
UPDATE fstore_online.rd SET n = 2 WHERE item_id = 7000;
SELECT item_id, n, s FROM fs_get_many(NULL::fstore_online.rd, ARRAY[7000]::bigint[]);
DELETE FROM fstore_online.rd WHERE item_id = 7000;
SELECT item_id, n, s FROM fs_get_many(NULL::fstore_online.rd, ARRAY[7000]::bigint[]);
-- a transaction sees its own uncommitted writes; a rollback undoes them
BEGIN;
SELECT * FROM fs_write('rd', ARRAY[ROW(1, -1, 'mine', NULL, '2026-02-01')]::fstore_online.rd[]);
SELECT item_id, n, s FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1]::bigint[]);
ROLLBACK;
SELECT item_id, n, s FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1]::bigint[]);
BEGIN;
TRUNCATE fstore_online.rd;
SELECT count(n) FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1, 2, 100]::bigint[]);
ROLLBACK;
SELECT count(n) FROM fs_get_many(NULL::fstore_online.rd, ARRAY[1, 2, 100]::bigint[]);

-- a view dropped and created again under the same name
SELECT fs_create_feature_view('again', 'item', 'n int');
SELECT * FROM fs_write('again', ARRAY[ROW(1, 1, now())]::fstore_online.again[]);
SELECT item_id, n FROM fs_get_many(NULL::fstore_online.again, ARRAY[1]::bigint[]);
SELECT fs_drop_feature_view('again');
SELECT fs_create_feature_view('again', 'item', 'n int, m int');
SELECT item_id, n, m FROM fs_get_many(NULL::fstore_online.again, ARRAY[1]::bigint[]);
SELECT * FROM fs_write('again', ARRAY[ROW(1, 2, 3, now())]::fstore_online.again[]);
SELECT item_id, n, m FROM fs_get_many(NULL::fstore_online.again, ARRAY[1]::bigint[]);
