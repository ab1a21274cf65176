-- Feature services that mix aggregation views with feature views
-- (docs/aggregations.md "Feature services"): fs_get_many, packed and
-- status at now(), training sets through such a service, bad input.
-- Then aggregation views in fstore.stats and fstore.freshness.
-- Events are written in the reading transaction, relative to now() (the
-- transaction's start) and at least a minute away from every window's
-- edge, so every value below is hand-computed.
SELECT fs_create_entity('sv_doc', 'doc_id bigint');
SELECT fs_create_entity('sv_user', 'user_id int');
SELECT fs_create_entity('sv_ud', 'user_id int, doc_id bigint');
SELECT fs_create_feature_view('sv_stats', 'sv_doc', 'quality real');
SELECT fs_create_aggregation_view('sv_act', 'sv_doc',
    events => 'clicks int, dwell real',
    aggregations => ARRAY['count(*) OVER 1 hour AS opens_1h',
                          'sum(clicks) OVER 1 day AS clicks_1d',
                          'avg(dwell) OVER 1 day AS dwell_1d']);
SELECT fs_create_aggregation_view('sv_uact', 'sv_user',
    events => 'n int', aggregations => ARRAY['sum(n) OVER 1 hour AS n_1h']);
SELECT fs_create_aggregation_view('sv_pair', 'sv_ud',
    events => 'x int', aggregations => ARRAY['count(*) OVER 1 day AS seen_1d']);

SELECT * FROM fs_write('sv_stats', ARRAY[ROW(1, 0.5, '2026-01-01 00:00+00'),
                                         ROW(2, 0.25, '2026-01-01 00:00+00')]::fstore_online.sv_stats[]);

-- a service mixing both kinds, with a derived feature over an aggregate
SELECT fs_create_feature_service('sv', ARRAY['sv_stats.quality', 'sv_act.opens_1h',
                                             'sv_act.clicks_1d AS clicks', 'sv_uact.*', 'sv_pair.seen_1d'],
    derived => ARRAY['clicks::real * quality AS weighted']);
SELECT position, view_name, feature, output_name FROM fstore.service_features WHERE service = 'sv'
UNION ALL
SELECT position, view_name, feature, output_name FROM fstore.service_aggregations WHERE service = 'sv'
ORDER BY 1;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'fstore_online.sv'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT a.attname FROM pg_attribute a
 WHERE a.attrelid = 'fstore.sv_request'::regclass AND a.attnum > 0 ORDER BY a.attnum;

BEGIN;
-- doc 1: 3 events in the last hour (clicks 1, 2, 4), one 3 hours ago
-- (clicks 8), one 2 days ago (outside every window); doc 2: one event
-- 2 hours ago; doc 3: none.  User 7: n 5 and 6 in the last hour, 100
-- 2 hours ago.  Pair (7, 1): 2 events in the day.
SELECT * FROM fs_write('sv_act', ARRAY[
    ROW(1, 1, 1.0, now() - interval '10 minutes'),
    ROW(1, 2, 2.0, now() - interval '20 minutes'),
    ROW(1, 4, NULL, now() - interval '50 minutes'),
    ROW(1, 8, 4.0, now() - interval '3 hours'),
    ROW(1, 16, 8.0, now() - interval '2 days'),
    ROW(2, 3, 0.5, now() - interval '2 hours')]::fstore_stream.sv_act[]);
SELECT * FROM fs_write('sv_uact', ARRAY[
    ROW(7, 5, now() - interval '5 minutes'),
    ROW(7, 6, now() - interval '30 minutes'),
    ROW(7, 100, now() - interval '2 hours')]::fstore_stream.sv_uact[]);
SELECT * FROM fs_write('sv_pair', ARRAY[
    ROW(7, 1, 0, now() - interval '5 minutes'),
    ROW(7, 1, 0, now() - interval '5 hours')]::fstore_stream.sv_pair[]);
-- per request: quality from the feature view, the aggregates at now();
-- doc 1: opens_1h 3, clicks 1+2+4+8 = 15, weighted 15 * 0.5 = 7.5;
-- doc 2: opens_1h 0 (its event left the hour), clicks 3; doc 3: no events
-- (count 0, sum NULL); a NULL request: NULLs; a NULL user: its views NULL
SELECT * FROM fs_get_many(NULL::fstore_online.sv, ARRAY[
    ROW(1, 7), ROW(2, 8), ROW(3, 7), NULL, ROW(1, NULL), ROW(NULL, 7)]::fstore.sv_request[]);
-- the same aggregates as fs_get_many of the aggregation views themselves
SELECT count(*) AS keys, count(*) FILTER (WHERE (s.opens_1h, s.clicks) IS DISTINCT FROM (a.opens_1h, a.clicks_1d)) AS differ
  FROM fs_get_many(NULL::fstore_online.sv, ARRAY[ROW(1, 7), ROW(2, 7), ROW(3, 7), ROW(4, 7)]::fstore.sv_request[]) s
  JOIN fs_get_many(NULL::fstore_online.sv_act, ARRAY[1, 2, 3, 4]::bigint[]) a USING (doc_id);
-- status: an aggregation view is present with events in its longest window
SELECT request, view_name, status,
       CASE WHEN view_name = 'sv_stats' THEN event_ts::text
            ELSE (now() - event_ts)::text END AS age
  FROM fs_get_many_status(NULL::fstore_online.sv, ARRAY[
       ROW(1, 7), ROW(3, 8), ROW(NULL, 7)]::fstore.sv_request[]);
-- packed: a service of one aggregation view's features answers as the view
SELECT fs_create_feature_service('sv_only', ARRAY['sv_act.*']);
SELECT s = v AS same_bytes, length(s) > 0 AS nonempty
  FROM fs_get_many_packed(NULL::fstore_online.sv_only, ARRAY[ROW(1), ROW(2)]::fstore.sv_only_request[]) s,
       fs_get_many_packed(NULL::fstore_online.sv_act, ARRAY[1, 2]::bigint[]) v;
-- a key with no feature view row and no events is absent in packed form
SELECT length(a) < length(b) AS absent_is_shorter
  FROM fs_get_many_packed(NULL::fstore_online.sv_only, ARRAY[ROW(3)]::fstore.sv_only_request[]) a,
       fs_get_many_packed(NULL::fstore_online.sv_only, ARRAY[ROW(1)]::fstore.sv_only_request[]) b;
-- a service of one entity takes the entity's keys too, whether its views
-- are aggregation views only or not
SELECT * FROM fs_get_many(NULL::fstore_online.sv_only, ARRAY[ROW(2), ROW(3)]::fstore.sv_only_request[]);
SELECT * FROM fs_get_many(NULL::fstore_online.sv_only, ARRAY[2, NULL, 3]::bigint[]);
SELECT fs_create_feature_service('sv_pairs', ARRAY['sv_pair.*']);
SELECT * FROM fs_get_many(NULL::fstore_online.sv_pairs, ARRAY[ROW(7, 1), NULL, ROW(7, NULL), ROW(8, 1)]::fstore.sv_ud_key[]);
SELECT request, view_name, status FROM fs_get_many_status(NULL::fstore_online.sv_pairs,
    ARRAY[ROW(7, 1), NULL, ROW(8, 1)]::fstore.sv_ud_key[]);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.sv_only, ARRAY[1, 3]::int[])$$);
SELECT fs_drop_feature_service('sv_pairs');
SELECT fs_create_feature_service('sv_one', ARRAY['sv_stats.quality', 'sv_act.opens_1h']);
SELECT * FROM fs_get_many(NULL::fstore_online.sv_one, ARRAY[2, 1]::bigint[]);

-- training sets through the service: each label gets the windows ending
-- at its event_ts, the derived feature over them; a label at now() equals
-- the online read
CREATE TABLE t.sv_labels AS
SELECT * FROM (VALUES (1::bigint, 7, now(), 1), (1::bigint, 7, now() - interval '2 hours', 2),
                      (2::bigint, 8, now(), 3), (3::bigint, 7, now(), 4)) v(doc_id, user_id, event_ts, label);
SELECT fs_create_training_set('sv_train', 'SELECT doc_id, user_id, event_ts, label FROM t.sv_labels', ARRAY['sv']);
SELECT label, quality, opens_1h, clicks, n_1h, seen_1d, weighted
  FROM fstore_training.sv_train ORDER BY label;
SELECT count(*) AS labels_at_now,
       count(*) FILTER (WHERE (tr.quality, tr.opens_1h, tr.clicks, tr.n_1h, tr.seen_1d, tr.weighted)
                        IS DISTINCT FROM (o.quality, o.opens_1h, o.clicks, o.n_1h, o.seen_1d, o.weighted)) AS differ
  FROM fstore_training.sv_train tr
  JOIN fs_get_many(NULL::fstore_online.sv, ARRAY(SELECT ROW(doc_id, user_id)::fstore.sv_request FROM t.sv_labels
                                                  WHERE event_ts = now())) o USING (doc_id, user_id)
 WHERE tr.event_ts = now();
SELECT fs_drop_training_set('sv_train');
COMMIT;

-- or_replace with the same definition changes nothing; another order of
-- the same columns is refused (the row type would change)
SELECT fs_create_feature_service('sv_one', ARRAY['sv_stats.quality', 'sv_act.opens_1h'], or_replace => true);
SELECT t.err($$SELECT fs_create_feature_service('sv_one', ARRAY['sv_act.opens_1h', 'sv_stats.quality'], or_replace => true)$$);
-- a service naming a service with aggregates takes its features
SELECT fs_create_feature_service('sv_copy', ARRAY['sv_one']);
SELECT position, view_name, feature FROM fstore.service_aggregations WHERE service = 'sv_copy';

-- bad input
SELECT t.err($$SELECT fs_create_feature_service('sv_bad', ARRAY['sv_act.nope'])$$);
SELECT t.err($$SELECT fs_create_feature_service('sv_bad', ARRAY['sv_act.* AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('sv_bad', ARRAY['sv_act.opens_1h', 'sv_stats.quality AS opens_1h'])$$);
SELECT t.err($$SELECT fs_create_feature_service('sv_act', ARRAY['sv_stats.quality'])$$);
SELECT t.err($$SELECT fs_create_feature_service('sv_bad', ARRAY['sv_act.opens_1h', NULL])$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.sv, ARRAY[1]::bigint[])$$);
SELECT t.err($$SELECT fs_drop_aggregation_view('sv_act')$$);
-- created_before is refused through a service too (tiles keep no creation time)
SELECT t.err($$SELECT fs_training_set_query('SELECT 1::bigint AS doc_id, 7 AS user_id, now() AS event_ts', ARRAY['sv'], created_before => now())$$);
-- reading needs SELECT on every view of the service, aggregation views included
CREATE ROLE sv_reader;
GRANT USAGE ON SCHEMA fstore_online TO sv_reader;
GRANT SELECT ON fstore_online.sv_stats TO sv_reader;
SET ROLE sv_reader;
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.sv_one, ARRAY[1]::bigint[])$$);
RESET ROLE;
-- another role cannot add rows for a service it does not own
SET ROLE sv_reader;
SELECT t.err($$INSERT INTO fstore.service_aggregations VALUES ('sv_one', 9, 'sv_act', 'opens_1h', 'x')$$);
RESET ROLE;
REVOKE ALL ON fstore_online.sv_stats FROM sv_reader;
REVOKE USAGE ON SCHEMA fstore_online FROM sv_reader;
DROP ROLE sv_reader;

SELECT fs_drop_feature_service(s) FROM unnest(ARRAY['sv', 'sv_only', 'sv_one', 'sv_copy']) s;
SELECT count(*) FROM fstore.service_aggregations;
SELECT fs_drop_aggregation_view(v) FROM unnest(ARRAY['sv_act', 'sv_uact', 'sv_pair']) v;
SELECT fs_drop_feature_view('sv_stats');
SELECT fs_drop_entity(e) FROM unnest(ARRAY['sv_doc', 'sv_user', 'sv_ud']) e;
DROP TABLE t.sv_labels;

-- ---------------------------------------------------------------------------
-- fstore.stats and fstore.freshness list aggregation views
-- ---------------------------------------------------------------------------
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone() AS workers;
SELECT fs_create_entity('st_doc', 'doc_id bigint');
SELECT fs_create_aggregation_view('st_act', 'st_doc', events => 'clicks int',
    aggregations => ARRAY['count(*) OVER 1 hour AS opens_1h'], retention => '1 day');
-- a new view: every counter 0, no state yet
SELECT view_name, lookups, keys_requested, cache_hits, cache_misses, rows_written, rows_late,
       stream_applied, queue_depth, stream_batches, dead_letters
  FROM fstore.stats WHERE view_name = 'st_act';
SELECT view_name, last_event_ts, last_write, watermark, lag, ttl, freshness_target, stale, queue_depth
  FROM fstore.freshness WHERE view_name = 'st_act';
BEGIN;
-- fs_write: 2 events added (the newest 3 minutes old), 1 older than the
-- longest window + retention (late)
SELECT * FROM fs_write('st_act', ARRAY[ROW(1, 1, now() - interval '10 minutes'),
                                       ROW(1, 1, now() - interval '3 minutes'),
                                       ROW(2, 1, now() - interval '30 days')]::fstore_stream.st_act[]);
SELECT last_event_ts = now() - interval '3 minutes' AS newest, lag = interval '3 minutes' AS lag_3m,
       last_write >= now() AS written_now
  FROM fstore.freshness WHERE view_name = 'st_act';
COMMIT;
-- two reads of 3 and 2 keys: lookups 2, keys 5 (never cache hits or misses)
SELECT count(*) FROM fs_get_many(NULL::fstore_online.st_act, ARRAY[1, 2, 3]::bigint[]);
SELECT count(*) FROM fs_get_many_at(NULL::fstore_online.st_act, ARRAY[1, 2]::bigint[], now());
-- a stream batch: 3 events, 1 applied, 1 late, 1 dead letter (NULL key);
-- an older event than the newest leaves last_event_ts as it was
INSERT INTO fstore_stream.st_act VALUES (1, 1, now() - interval '5 minutes'),
    (1, 1, now() - interval '40 days'), (NULL, 1, now());
SELECT view_name, queue_depth FROM fstore.stats WHERE view_name = 'st_act';
SELECT * FROM fs_stream_apply('st_act');
SELECT view_name, lookups, keys_requested, cache_hits, cache_misses, rows_written, rows_late,
       stream_applied, queue_depth, stream_batches, dead_letters
  FROM fstore.stats WHERE view_name = 'st_act';
SELECT now() - last_event_ts >= interval '3 minutes' AND now() - last_event_ts < interval '4 minutes' AS newest_kept
  FROM fstore.freshness WHERE view_name = 'st_act';
-- a freshness target for an aggregation view: stale when the newest event
-- is older; fs_check_freshness lists it
SELECT fs_set_freshness_target('st_act', '1 second');
SELECT view_name, freshness_target, stale FROM fstore.freshness WHERE view_name = 'st_act';
SELECT view_name, problem FROM fs_check_freshness() WHERE view_name = 'st_act';
SELECT fs_set_freshness_target('st_act', '1 day');
SELECT view_name, freshness_target, stale FROM fstore.freshness WHERE view_name = 'st_act';
SELECT fs_set_freshness_target('st_act', NULL);
SELECT freshness_target FROM fstore.aggregation_views WHERE name = 'st_act';
SELECT t.err($$SELECT fs_set_freshness_target('st_act', '-1 second')$$);
SELECT t.err($$SELECT fs_set_freshness_target('st_nope', '1 second')$$);
-- only the view's owner sets its target
CREATE ROLE st_other;
SET ROLE st_other;
SELECT t.err($$SELECT fs_set_freshness_target('st_act', '1 hour')$$);
RESET ROLE;
DROP ROLE st_other;
-- events queued: the queue's depth
INSERT INTO fstore_stream.st_act VALUES (3, 1, now());
SELECT view_name, queue_depth, stream_workers FROM fstore.freshness WHERE view_name = 'st_act';
-- a dropped view leaves neither state nor rows
SELECT fs_drop_aggregation_view('st_act');
SELECT count(*) AS state_rows FROM fstore.aggregation_state;
SELECT count(*) AS listed FROM fstore.stats WHERE view_name = 'st_act';

-- ---------------------------------------------------------------------------
-- Dead letters are to_jsonb of the event: a cast to json of an event
-- column's type runs as the view's owner, restricted, with the pinned
-- search_path, in the C path and in the SQL path alike
-- ---------------------------------------------------------------------------
CREATE TYPE t.dl_mood AS ENUM ('calm', 'angry');
CREATE TABLE t.dl_log (who text, search_path text, restricted bool);
CREATE FUNCTION t.dl_mood_json(m t.dl_mood) RETURNS json LANGUAGE plpgsql AS $$
DECLARE
    r bool := false;
BEGIN
    BEGIN
        CREATE TEMP TABLE dl_probe (x int);
        DROP TABLE dl_probe;
    EXCEPTION WHEN OTHERS THEN
        r := true;
    END;
    INSERT INTO t.dl_log VALUES (current_user, pg_catalog.current_setting('search_path'), r);
    RETURN pg_catalog.to_json(m::text || '!');
END
$$;
CREATE CAST (t.dl_mood AS json) WITH FUNCTION t.dl_mood_json(t.dl_mood);
-- the cast is what to_jsonb uses for the type
SELECT to_jsonb('calm'::t.dl_mood) AS direct;
SELECT who, search_path, restricted FROM t.dl_log;
TRUNCATE t.dl_log;
SELECT fs_create_aggregation_view('st_dl', 'st_doc', events => 'm t.dl_mood',
    aggregations => ARRAY['count(*) OVER 1 hour AS n_1h']);
SELECT fs_create_aggregation_view('st_dls', 'st_doc', events => 'm t.dl_mood',
    aggregations => ARRAY['count(DISTINCT m) OVER 1 hour AS moods_1h']);
-- st_dl belongs to a role without other rights: the cast runs as that role
CREATE ROLE st_dl_owner;
GRANT USAGE ON SCHEMA t TO st_dl_owner;
GRANT INSERT ON t.dl_log TO st_dl_owner;
ALTER VIEW fstore_online.st_dl OWNER TO st_dl_owner;
ALTER TABLE fstore_offline.st_dl OWNER TO st_dl_owner;
ALTER TABLE fstore_stream.st_dl OWNER TO st_dl_owner;
INSERT INTO fstore_stream.st_dl VALUES (NULL, 'angry', now()), (1, 'calm', now());
INSERT INTO fstore_stream.st_dls VALUES (NULL, 'angry', now()), (1, 'calm', now());
SELECT events, applied, dead_letters FROM fs_stream_apply('st_dl');
SELECT events, applied, dead_letters FROM fs_stream_apply('st_dls');
SELECT view_name, event->>'m' AS m, sqlstate FROM fstore.dead_letters
 WHERE view_name IN ('st_dl', 'st_dls') ORDER BY view_name;
SELECT who, search_path, restricted FROM t.dl_log ORDER BY who;
SELECT fs_drop_aggregation_view(v) FROM unnest(ARRAY['st_dl', 'st_dls']) v;
REVOKE ALL ON t.dl_log FROM st_dl_owner;
REVOKE USAGE ON SCHEMA t FROM st_dl_owner;
DROP ROLE st_dl_owner;
DROP CAST (t.dl_mood AS json);
DROP FUNCTION t.dl_mood_json(t.dl_mood);
DROP TABLE t.dl_log;
DROP TYPE t.dl_mood;

SELECT fs_drop_entity('st_doc');
ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
