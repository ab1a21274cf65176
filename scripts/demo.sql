-- fstore demo: documents with features, a change-detecting refresh, and a
-- ranking lookup of 1,000 candidates in one call.
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION fstore;
\o /dev/null
SELECT setseed(0.42);
\o

\echo
\echo '== catalog: an entity, two feature views, one feature service'
\o /dev/null
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_feature_view('doc_stats', 'doc',
    'views_7d int, ctr real, quality real, embedding real[]');
SELECT fs_create_feature_view('doc_activity', 'doc',
    'opens_1h int, shares_1d int', ttl => interval '1 day');
SELECT fs_create_feature_service('ranker_v1', ARRAY[
    'doc_stats.views_7d', 'doc_stats.ctr', 'doc_stats.quality',
    'doc_activity.opens_1h AS opens', 'doc_activity.shares_1d AS shares']);
\o
\d fstore_online.ranker_v1

\echo
\echo '== load 5,000 documents (every row is new: written)'
CREATE TEMP TABLE docs AS
SELECT g AS doc_id,
       (random() * 5000)::int AS views_7d,
       round(random()::numeric, 3)::real AS ctr,
       round(random()::numeric, 2)::real AS quality,
       ARRAY[random(), random(), random(), random()]::real[] AS embedding,
       (random() * 50)::int AS opens_1h,
       (random() * 10)::int AS shares_1d
  FROM generate_series(1, 5000) g;
SELECT * FROM fs_write_query('doc_stats',
    'SELECT doc_id, views_7d, ctr, quality, embedding, now() - interval ''1 hour'' FROM docs');
SELECT * FROM fs_write_query('doc_activity',
    'SELECT doc_id, opens_1h, shares_1d, now() - interval ''10 minutes'' FROM docs');

\echo
\echo '== a refresh where 2% of the documents changed: only those are written'
UPDATE docs SET views_7d = views_7d + 1 WHERE doc_id % 50 = 0;
SELECT * FROM fs_write_query('doc_stats',
    'SELECT doc_id, views_7d, ctr, quality, embedding, now() FROM docs');
SELECT count(*) AS history_rows FROM fstore_offline.doc_stats;

\echo
\echo '== ranking lookup: features of 1,000 candidates from both views, one call'
CREATE TEMP TABLE candidates AS
SELECT array_agg((1 + (g * 7919) % 6000)::bigint) AS ids FROM generate_series(1, 1000) g;
\timing on
SELECT f.doc_id,
       round((f.ctr * ln(1 + f.views_7d) + 0.1 * f.opens + 0.5 * f.shares)::numeric, 3) AS score,
       f.views_7d, f.ctr, f.opens, f.shares
  FROM candidates c, fs_get_many(NULL::fstore_online.ranker_v1, c.ids) f
 WHERE f.views_7d IS NOT NULL
 ORDER BY score DESC, f.doc_id
 LIMIT 10;
\timing off
SELECT count(*) AS candidates, count(f.views_7d) AS with_features
  FROM candidates c, fs_get_many(NULL::fstore_online.ranker_v1, c.ids) f;

\echo
\echo '== fstore.stats'
SELECT view_name, lookups, keys_requested, rows_written, rows_unchanged, rows_late
  FROM fstore.stats ORDER BY view_name;
