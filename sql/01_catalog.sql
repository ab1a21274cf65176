-- Catalogs: entities, feature views, feature services; names, collisions,
-- dependencies, and the generated tables and types.
\set SHOW_CONTEXT never

-- entities
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_entity('user_doc', 'user_id bigint, doc_id bigint');
SELECT fs_create_entity('word', 'w text');
SELECT name, key_columns, key_types, key_type FROM fstore.entities ORDER BY name;
\d fstore.user_doc_key

-- entity errors
SELECT t.err($$SELECT fs_create_entity('doc', 'doc_id bigint')$$);
SELECT t.err($$SELECT fs_create_entity('Doc', 'doc_id bigint')$$);
SELECT t.err($$SELECT fs_create_entity('a-b', 'doc_id bigint')$$);
SELECT t.err($$SELECT fs_create_entity(repeat('e', 60), 'doc_id bigint')$$);
SELECT t.err($$SELECT fs_create_entity(NULL, 'doc_id bigint')$$);
SELECT t.err($$SELECT fs_create_entity('e1', NULL)$$);
SELECT t.err($$SELECT fs_create_entity('e1', '')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x nosuchtype')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x point')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'event_ts bigint')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x int, x int')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x int PRIMARY KEY')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x int DEFAULT 1')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x int COLLATE "C"')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x setof int')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x int, y int, z int, a int, b int, c int, d int, e int, f int, g int, h int, i int, j int, k int, l int, m int, n int')$$);
-- injection attempts through the column list are refused by the parser
SELECT t.err($$SELECT fs_create_entity('e1', 'x int); DROP TABLE fstore.entities; --')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x int) INHERITS (fstore.entities')$$);
SELECT t.err($$SELECT fs_create_entity('e1', 'x int) WITH (fillfactor=10')$$);
SELECT fs_create_entity('e1', 'x int); DROP TABLE fstore.entities; --');
SELECT count(*) FROM fstore.entities;
SELECT t.err($$SELECT fs_drop_entity('nosuch')$$);

-- feature views
SELECT fs_create_feature_view(name => 'doc_stats', entity => 'doc',
    features => 'views_7d int, ctr real, embedding real[]');
SELECT fs_create_feature_view('doc_activity', 'doc', 'opens_1h int, "Mixed Case" text',
    ttl => interval '1 day');
SELECT fs_create_feature_view('user_doc_stats', 'user_doc', 'clicks int, dwell double precision');
SELECT name, entity, source, timestamp_column, ttl FROM fstore.feature_views ORDER BY view_id;
SELECT view_name, position, name, type FROM fstore.features ORDER BY view_name, position;
\d fstore_online.doc_stats
\d fstore_offline.doc_stats
\d fstore_stream.doc_stats
\d fstore_online.user_doc_stats
\d fstore_offline.user_doc_stats

-- a view from a source: features are the source's other columns
CREATE SCHEMA raw;
CREATE TABLE raw.doc_daily (doc_id bigint, event_ts timestamptz, score real, tags text[], "Odd Name" int);
SELECT fs_create_feature_view('doc_daily', 'doc', source => 'raw.doc_daily'::regclass);
SELECT name, source FROM fstore.feature_views WHERE name = 'doc_daily';
SELECT name, type FROM fstore.features WHERE view_name = 'doc_daily' ORDER BY position;
CREATE TABLE raw.other (id bigint, t timestamptz, score real);
SELECT t.err($$SELECT fs_create_feature_view('bad_src', 'doc', 'score real', source => 'raw.other'::regclass)$$);
SELECT t.err($$SELECT fs_create_feature_view('bad_src', 'doc', 'score real', source => 'raw.doc_daily'::regclass, timestamp_column => 't')$$);
SELECT t.err($$SELECT fs_create_feature_view('bad_src', 'doc', 'nope real', source => 'raw.doc_daily'::regclass)$$);

-- view errors
SELECT t.err($$SELECT fs_create_feature_view('doc_stats', 'doc', 'x int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'nosuch', 'x int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', NULL, 'x int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', NULL)$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', 'doc_id int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', 'event_ts int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', 'created_at int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', 'a int, a int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', 'a int', ttl => interval '-1 day')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', 'a int', ttl => interval '0')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1; drop table x', 'doc', 'a int')$$);
SELECT t.err($$SELECT fs_create_feature_view(repeat('v', 64), 'doc', 'a int')$$);
SELECT t.err($$SELECT fs_create_feature_view('v1', 'doc', 'a int); DROP SCHEMA fstore CASCADE; --')$$);
CREATE TABLE fstore_online.taken (x int);
SELECT t.err($$SELECT fs_create_feature_view('taken', 'doc', 'a int')$$);
DROP TABLE fstore_online.taken;
SELECT count(*) FROM fstore.feature_views;
-- a failed creation leaves nothing behind
SELECT to_regclass('fstore_offline.taken'), to_regclass('fstore_stream.taken');

-- feature services
SELECT fs_create_feature_service('ranker_v1',
    ARRAY['doc_stats.views_7d', 'doc_stats.ctr', 'doc_activity.opens_1h AS opens']);
SELECT service, position, view_name, feature, output_name FROM fstore.service_features ORDER BY position;
\d fstore_online.ranker_v1
SELECT fs_create_feature_service('all_doc', ARRAY['doc_stats.*', 'doc_activity."Mixed Case" AS mixed',
                                                  'doc_activity.opens_1h AS "Opens 1h"']);
\d fstore_online.all_doc

-- service errors
SELECT t.err($$SELECT fs_create_feature_service('ranker_v1', ARRAY['doc_stats.ctr'])$$);
SELECT t.err($$SELECT fs_create_feature_service('doc_stats', ARRAY['doc_stats.ctr'])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY['nosuch.ctr'])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY['doc_stats.nosuch'])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY['doc_stats.ctr', 'doc_daily.score', 'doc_stats.ctr'])$$);
-- views of different entities share a service since 0.2 (sql/12_services.sql)
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY['ctr'])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY['doc_stats.ctr AS doc_id'])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY['doc_stats.* AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY[]::text[])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', NULL)$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY[NULL])$$);
SELECT t.err($$SELECT fs_create_feature_service('s1', ARRAY['doc_stats.ctr); DROP TABLE fstore.entities; --'])$$);
SELECT t.err($$SELECT fs_create_feature_view('ranker_v1', 'doc', 'a int')$$);
SELECT count(*) FROM fstore.feature_services;

-- dependencies: 2BP01, with the dependents named
SELECT fs_drop_entity('doc');
SELECT t.err($$SELECT fs_drop_entity('doc')$$);
SELECT fs_drop_feature_view('doc_stats');
SELECT t.err($$SELECT fs_drop_feature_view('doc_stats')$$);
SELECT t.err($$SELECT fs_drop_feature_service('nosuch')$$);
SELECT t.err($$SELECT fs_drop_feature_view('nosuch')$$);
SELECT fs_drop_feature_service('all_doc');
SELECT to_regtype('fstore_online.all_doc');

-- dropping a view drops its three tables
SELECT fs_create_feature_view('tmp_view', 'word', 'n int');
SELECT fs_drop_feature_view('tmp_view');
SELECT to_regclass('fstore_online.tmp_view'), to_regclass('fstore_offline.tmp_view'),
       to_regclass('fstore_stream.tmp_view');
SELECT fs_drop_entity('word');
SELECT fs_create_entity('tmp_e', 'a int, b text');
SELECT fs_drop_entity('tmp_e');
SELECT to_regtype('fstore.tmp_e_key');

-- re-create under the same name after a drop
SELECT fs_create_feature_view('tmp_view', 'doc', 'n int');
SELECT fs_drop_feature_view('tmp_view');
SELECT fs_create_feature_view('tmp_view', 'doc', 'n int, m int');
\d fstore_online.tmp_view
SELECT fs_drop_feature_view('tmp_view');

-- DROP EXTENSION without CASCADE is refused while feature tables exist
-- (with the stream workers stopped: DROP EXTENSION locks the extension's
-- objects one by one, and a worker reading the catalogs meanwhile can make
-- it a deadlock victim, 40P01, instead of reaching the 2BP01 check)
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone() AS workers;
SELECT t.err('DROP EXTENSION fstore');
ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
