-- Write path: a refresh of 100,000 rows, 2% changed, into a view of
-- 1,000,000 keys x 32 float4 features, three ways, from the same state:
--   fs_write_query   fstore, the batch read by a query
--   fs_write         fstore, the batch passed as one array
--   naive            INSERT ... ON CONFLICT DO UPDATE of every row, then
--                    every row appended to the history (Feast's way)
-- Each variant has its own copy of the tables.  psql variables: rounds.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS fstore;
SELECT setseed(0.17);

SELECT fs_create_entity('k', 'id bigint');
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('wq', 'k', :'feats');
SELECT fs_create_feature_view('wa', 'k', :'feats');
CREATE TABLE naive_online (LIKE fstore_online.wq INCLUDING ALL);
CREATE TABLE naive_history (LIKE fstore_offline.wq INCLUDING ALL);

-- 1,000,000 keys, the same values in all three
CREATE TABLE seed_rows AS
SELECT g::bigint AS id, (SELECT array_agg(random()::real) FROM generate_series(1, 32) x WHERE g > 0) AS f
  FROM generate_series(1, 1000000) g;
SELECT string_agg(format('f[%s]', i), ', ') AS fcols FROM generate_series(1, 32) i \gset
SELECT * FROM fs_write_query('wq', format('SELECT id, %s, ''2026-01-01''::timestamptz FROM seed_rows', :'fcols'));
SELECT * FROM fs_write_query('wa', format('SELECT id, %s, ''2026-01-01''::timestamptz FROM seed_rows', :'fcols'));
INSERT INTO naive_online SELECT * FROM fstore_online.wq;
INSERT INTO naive_history SELECT * FROM fstore_offline.wq;
DROP TABLE seed_rows;
VACUUM ANALYZE;

CREATE TABLE results (variant text, round int, ms float8, wal bigint, fpi bigint,
                      online_rows bigint, history_rows bigint);
SELECT string_agg(format('f%s = excluded.f%s', i, i), ', ') AS sets FROM generate_series(1, 32) i \gset
