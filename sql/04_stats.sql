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

-- ---------------------------------------------------------------------------
-- fstore.freshness: what the writers of a view committed.  Notes are
-- published at commit (shared memory) and written to fstore.view_state
-- about once a second: an aborted transaction or subtransaction shows
-- nothing, a committed one at once.
SELECT fs_create_feature_view('fr', 'item', 'n int');
BEGIN;
SELECT written FROM fs_write('fr', ARRAY[ROW(1, 1, '2026-03-01')]::fstore_online.fr[]);
ROLLBACK;
SELECT last_event_ts, last_write IS NULL AS no_write FROM fstore.freshness WHERE view_name = 'fr';
BEGIN;
SELECT written FROM fs_write('fr', ARRAY[ROW(1, 1, '2026-02-01')]::fstore_online.fr[]);
SAVEPOINT s1;
SELECT written FROM fs_write('fr', ARRAY[ROW(2, 1, '2026-04-01')]::fstore_online.fr[]);
ROLLBACK TO s1;
SAVEPOINT s2;
SAVEPOINT s3;
SELECT written FROM fs_write('fr', ARRAY[ROW(3, 1, '2026-02-15')]::fstore_online.fr[]);
RELEASE s3;
RELEASE s2;
COMMIT;
SELECT last_event_ts, last_write > now() - interval '1 minute' AS recent
  FROM fstore.freshness WHERE view_name = 'fr';
-- a failed statement after a write: the write still counts once committed
BEGIN;
SELECT written FROM fs_write('fr', ARRAY[ROW(4, 1, '2026-02-20')]::fstore_online.fr[]);
SAVEPOINT s4;
SELECT t.err($$SELECT fs_write('fr', ARRAY[ROW(NULL, 1, '2026-05-01')]::fstore_online.fr[])$$);
ROLLBACK TO s4;
COMMIT;
SELECT last_event_ts FROM fstore.freshness WHERE view_name = 'fr';

-- 300 small writes, each its own transaction: each shows at once, and the
-- row of fstore.view_state is written about once a second, not 300 times
CREATE PROCEDURE t.small_writes(n int) LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM fs_write('fr', ARRAY[ROW(i % 7, i, '2026-03-01'::timestamptz + i * interval '1 second')]::fstore_online.fr[]);
        COMMIT;
    END LOOP;
END
$$;
SELECT pg_stat_force_next_flush();
SELECT n_tup_ins + n_tup_upd AS rows_before FROM pg_stat_user_tables
 WHERE relid = 'fstore.view_state'::regclass \gset
-- (a second after the last write: the loop may write the row at once)
SELECT pg_sleep(1.1);
SELECT clock_timestamp() AS t0 \gset
CALL t.small_writes(300);
SELECT extract(epoch FROM clock_timestamp() - :'t0') AS secs \gset
SELECT last_event_ts FROM fstore.freshness WHERE view_name = 'fr';
SELECT pg_stat_force_next_flush();
-- (the stream worker may meanwhile write, once, the row of any other view
-- whose last write it had not: the counts are of the whole table; and it
-- may have written this view's row just before, so none is required)
SELECT n_tup_ins + n_tup_upd - :rows_before
       <= ceil(:secs) + 2 + (SELECT count(*) FROM fstore.feature_views) AS row_written_about_once_a_second
  FROM pg_stat_user_tables WHERE relid = 'fstore.view_state'::regclass;
-- the row never runs ahead of what committed
SELECT s.last_event_ts <= f.last_event_ts AS row_not_ahead
  FROM fstore.view_state s JOIN fstore.feature_views v USING (view_id)
  JOIN fstore.freshness f ON f.view_name = v.name WHERE v.name = 'fr';
DROP PROCEDURE t.small_writes(int);
SELECT fs_drop_feature_view('fr');
