-- fstore.stats and fs_reset_stats.
\set SHOW_CONTEXT never

SELECT fs_reset_stats();
SELECT fs_create_feature_view('st', 'item', 'n int');
SELECT * FROM fs_write('st', ARRAY[ROW(1, 1, '2026-01-01'), ROW(2, 2, '2026-01-01')]::fstore_online.st[]);
SELECT * FROM fs_write('st', ARRAY[ROW(1, 1, '2026-01-02'), ROW(2, 3, '2026-01-02'),
                                   ROW(1, 5, '2025-01-01')]::fstore_online.st[]);
SELECT count(*) FROM fs_get_many(NULL::fstore_online.st, ARRAY[1, 2, 3]::bigint[]);
SELECT count(*) FROM fs_get_many(NULL::fstore_online.st, ARRAY[1]::bigint[]);
SELECT view_name, lookups, keys_requested, rows_written, rows_unchanged, rows_late,
       stream_applied, queue_depth
  FROM fstore.stats WHERE view_name = 'st';

-- a service lookup counts once for each of its views
SELECT fs_reset_stats();
SELECT count(*) FROM fs_get_many(NULL::fstore_online.ranker_v1, ARRAY[1, 2]::bigint[]);
SELECT view_name, lookups, keys_requested FROM fstore.stats
 WHERE lookups > 0 ORDER BY view_name;

-- every view has a row, counted or not
SELECT count(*) = (SELECT count(*) FROM fstore.feature_views) FROM fstore.stats;
SELECT fs_reset_stats();
SELECT view_name, lookups, keys_requested, rows_written FROM fstore.stats WHERE view_name = 'st';

-- only privileged roles may reset
CREATE ROLE fs_nobody;
SET ROLE fs_nobody;
SELECT t.err('SELECT fs_reset_stats()');
RESET ROLE;
DROP ROLE fs_nobody;
-- the helpers that clear a view's shared state refuse live views
SELECT regexp_replace(t.err(format('SELECT fstore._forget_view(%s)', view_id)), 'view \d+', 'view N') AS err
  FROM fstore.feature_views WHERE name = 'st';
SELECT regexp_replace(t.err(format('SELECT fstore._init_view(%s)', view_id)), 'view \d+', 'view N') AS err
  FROM fstore.feature_views WHERE name = 'st';
SHOW fstore.max_feature_views;
