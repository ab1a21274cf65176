-- Feature services across entities (a ranker's whole request in one call),
-- derived features, why a value is missing, stable row types, or_replace.

SELECT fs_create_entity('rk_user', 'user_id bigint');
SELECT fs_create_entity('rk_doc', 'doc_id bigint');
SELECT fs_create_entity('rk_user_doc', 'user_id bigint, doc_id bigint');
SELECT fs_create_feature_view('rk_u', 'rk_user',
    'clicks_7d int, views_7d int, last_open_ts timestamptz', ttl => '1 day');
SELECT fs_create_feature_view('rk_d', 'rk_doc', 'quality real, lang text');
SELECT fs_create_feature_view('rk_ud', 'rk_user_doc', 'affinity real');

SELECT * FROM fs_write('rk_d', ARRAY[
    ROW(100, 0.5, 'en', '2026-01-01 00:00+00'),
    ROW(101, 0.25, 'de', '2026-01-01 00:00+00'),
    ROW(102, NULL, 'fr', '2026-01-02 00:00+00')]::fstore_online.rk_d[]);
SELECT * FROM fs_write('rk_ud', ARRAY[
    ROW(1, 100, 0.75, '2026-01-01 00:00+00'),
    ROW(2, 101, 0.125, '2026-01-01 00:00+00')]::fstore_online.rk_ud[]);

-- one service over three entities, with derived features
SELECT fs_create_feature_service('rk',
    ARRAY['rk_u.clicks_7d', 'rk_u.views_7d', 'rk_u.last_open_ts', 'rk_d.quality', 'rk_ud.affinity'],
    derived => ARRAY['extract(epoch from now() - last_open_ts) AS secs_since_open',
                     'clicks_7d::real / nullif(views_7d, 0) AS ctr_7d',
                     'quality * 2 AS q2']);

-- the request type: the union of the entities' key columns, user_id once
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'fstore.rk_request'::regclass AND a.attnum > 0
 ORDER BY a.attnum;
-- the row type: request columns, features, derived features (typed)
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
  FROM pg_attribute a WHERE a.attrelid = 'fstore_online.rk'::regclass AND a.attnum > 0
 ORDER BY a.attnum;
SELECT name, entity, request_type, derived, derived_types, derived_exprs
  FROM fstore.feature_services WHERE name = 'rk';

-- the user view is written in the reading transaction, so that now() (the
-- transaction's start) gives exact ages: user 1 opened 90 s ago, user 3
-- an hour ago with no views, user 2's value is older than the ttl
BEGIN;
SELECT * FROM fs_write('rk_u', ARRAY[
    ROW(1, 10, 40, now() - interval '90 seconds', now() - interval '1 hour'),
    ROW(2, 5, 5, '2020-01-01 00:00+00', '2020-01-01 00:00+00'),
    ROW(3, 7, 0, now() - interval '1 hour', now() - interval '1 hour')]::fstore_online.rk_u[]);
-- one row per request, in input order; a NULL request is a row of NULLs;
-- a NULL key field leaves that entity's features NULL
SELECT user_id, doc_id, clicks_7d, views_7d,
       last_open_ts = now() - interval '90 seconds' AS opened_90s_ago,
       quality, affinity, secs_since_open, ctr_7d, q2
  FROM fs_get_many(NULL::fstore_online.rk, ARRAY[
       ROW(1, 100), ROW(1, 101), ROW(1, 100), NULL, ROW(2, 101), ROW(3, NULL), ROW(4, 102)
       ]::fstore.rk_request[]);
-- why: per request and view
SELECT request, view_name, status,
       CASE WHEN view_name = 'rk_u' THEN (event_ts = now() - interval '1 hour')::text
            ELSE event_ts::text END AS event_ts
  FROM fs_get_many_status(NULL::fstore_online.rk, ARRAY[
       ROW(1, 100), NULL, ROW(2, 101), ROW(3, NULL), ROW(4, 102)]::fstore.rk_request[]);
COMMIT;
SELECT count(*) FROM fs_get_many_status(NULL::fstore_online.rk, NULL::fstore.rk_request[]);
SELECT t.err($$SELECT * FROM fs_get_many_status(NULL::fstore_online.rk, ARRAY[1, 2])$$);
SELECT t.err($$SELECT * FROM fs_get_many_status(NULL::fstore_online.rk_d, ARRAY[100]::bigint[])$$);

-- each distinct key is read once a call: 500 candidates of one user read
-- the user's row once (cache hits + misses count distinct keys read)
SELECT fs_reset_stats();
SELECT count(*), count(clicks_7d), count(quality), count(affinity)
  FROM fs_get_many(NULL::fstore_online.rk,
       (SELECT array_agg(ROW(1, 100 + g % 3)::fstore.rk_request) FROM generate_series(1, 500) g));
SELECT view_name, lookups, keys_requested, cache_hits + cache_misses AS keys_read
  FROM fstore.stats WHERE view_name LIKE 'rk\_%' ORDER BY view_name;

-- a NULL key array gives no rows
SELECT count(*) FROM fs_get_many(NULL::fstore_online.rk, NULL::fstore.rk_request[]);

-- a service of one entity takes its keys as before, or requests
SELECT fs_create_feature_service('rk_docs', ARRAY['rk_d.*']);
SELECT * FROM fs_get_many(NULL::fstore_online.rk_docs, ARRAY[101, NULL, 100, 7]::bigint[]);
SELECT * FROM fs_get_many(NULL::fstore_online.rk_docs, ARRAY[ROW(101), NULL, ROW(100), ROW(7)]::fstore.rk_docs_request[]);

-- packed: records in request order; present when any view has the key.
-- The request columns come in order of first appearance: doc_id, user_id.
SELECT fs_create_feature_service('rk_p', ARRAY['rk_d.quality', 'rk_ud.affinity'],
    derived => ARRAY['coalesce(affinity, 0::real) AS aff0']);
SELECT a.attname FROM pg_attribute a
 WHERE a.attrelid = 'fstore.rk_p_request'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT length(p), encode(substring(p FROM 57), 'hex')
  FROM fs_get_many_packed(NULL::fstore_online.rk_p,
           ARRAY[ROW(100, 1), NULL, ROW(999, 9), ROW(101, 9)]::fstore.rk_p_request[]) p;
-- a derived feature of a type packed answers do not hold is refused
SELECT t.err($$SELECT fs_get_many_packed(NULL::fstore_online.rk, ARRAY[ROW(1, 100)]::fstore.rk_request[])$$);

-- bad input: key arrays of another type
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rk, ARRAY[1, 2])$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rk, ARRAY[ROW(1, 100)])$$);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rk, ARRAY[ROW(100)]::fstore.rk_docs_request[])$$);

-- views that disagree on a shared key column's type
SELECT fs_create_entity('rk_user_t', 'user_id text');
SELECT fs_create_feature_view('rk_ut', 'rk_user_t', 'x int');
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.clicks_7d', 'rk_ut.x'])$$);
-- a feature named like a request column
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_d.quality AS user_id', 'rk_ud.affinity'])$$);

-- bad derived features
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d + AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['nosuch + 1 AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d + 1'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d AS a, views_7d AS b'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d AS a FROM pg_class'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d AS a; DROP TABLE fstore.entities'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['(SELECT 1) AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d IN (SELECT 1) AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['random() AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clock_timestamp() - last_open_ts AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['statement_timestamp() - last_open_ts AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['current_date AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['sum(clicks_7d) AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['rank() OVER () AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['generate_series(1, clicks_7d) AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['pg_class.oid AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['fstore_row AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['fstore_now AS x'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d AS views_7d'])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY[NULL])$$);
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_u.*'], derived => ARRAY['NULL AS x'])$$);
SELECT derived_types FROM fstore.feature_services WHERE name = 'rk_bad';
SELECT fs_drop_feature_service('rk_bad');
-- names resolve with search_path = pg_catalog, pg_temp: a function of
-- another schema must be qualified, and is stored qualified
CREATE FUNCTION public.rk_half(x real) RETURNS real LANGUAGE sql IMMUTABLE AS 'SELECT x / 2';
CREATE FUNCTION public.rk_who() RETURNS text LANGUAGE sql STABLE AS 'SELECT current_user::text';
SELECT t.err($$SELECT fs_create_feature_service('rk_bad', ARRAY['rk_d.*'], derived => ARRAY['rk_half(quality) AS h'])$$);
SELECT fs_create_feature_service('rk_q', ARRAY['rk_d.*'],
    derived => ARRAY['public.rk_half(quality) AS h', 'public.rk_who() AS who', 'lang || ''!'' AS bang']);
SELECT derived_exprs FROM fstore.feature_services WHERE name = 'rk_q';
-- evaluated as the service's owner, whoever reads
CREATE ROLE rk_reader;
GRANT SELECT ON fstore_online.rk_d, fstore_online.rk_u, fstore_online.rk_ud TO rk_reader;
SET ROLE rk_reader;
SELECT doc_id, h, who = (SELECT t.typowner::regrole::text FROM pg_type t WHERE t.oid = 'fstore_online.rk_q'::regtype) AS who_is_owner, bang
  FROM fs_get_many(NULL::fstore_online.rk_q, ARRAY[100, 102]::bigint[]);
RESET ROLE;
-- the planned expressions are kept between calls, until a function changes
SELECT doc_id, h FROM fs_get_many(NULL::fstore_online.rk_q, ARRAY[100]::bigint[]);
CREATE OR REPLACE FUNCTION public.rk_half(x real) RETURNS real LANGUAGE sql IMMUTABLE AS 'SELECT x / 4';
SELECT doc_id, h FROM fs_get_many(NULL::fstore_online.rk_q, ARRAY[100]::bigint[]);
CREATE OR REPLACE FUNCTION public.rk_half(x real) RETURNS real LANGUAGE sql IMMUTABLE AS 'SELECT x / 2';

-- an error in a derived feature is the call's error
SELECT fs_create_feature_service('rk_div', ARRAY['rk_u.*'], derived => ARRAY['clicks_7d / views_7d AS r']);
SELECT * FROM fs_write('rk_u', ARRAY[ROW(3, 7, 0, now(), now())]::fstore_online.rk_u[]);
SELECT t.err($$SELECT * FROM fs_get_many(NULL::fstore_online.rk_div, ARRAY[3]::bigint[])$$);
SELECT user_id, r FROM fs_get_many(NULL::fstore_online.rk_div, ARRAY[5, NULL]::bigint[]);

-- or_replace: the same definition changes nothing
CREATE TEMP TABLE rk_before AS
SELECT 'fstore_online.rk'::regtype::oid AS row_oid, 'fstore.rk_request'::regtype::oid AS req_oid,
       (SELECT created_at FROM fstore.feature_services WHERE name = 'rk') AS created_at;
SELECT t.err($$SELECT fs_create_feature_service('rk', ARRAY['rk_u.clicks_7d'])$$);
SELECT fs_create_feature_service('rk',
    ARRAY['rk_u.clicks_7d', 'rk_u.views_7d', 'rk_u.last_open_ts', 'rk_d.quality', 'rk_ud.affinity'],
    derived => ARRAY['extract(epoch from now() - last_open_ts) AS secs_since_open',
                     'clicks_7d::real / nullif(views_7d, 0) AS ctr_7d',
                     'quality * 2 AS q2'], or_replace => true);
SELECT b.row_oid = 'fstore_online.rk'::regtype::oid AS same_row_type,
       b.req_oid = 'fstore.rk_request'::regtype::oid AS same_request_type,
       b.created_at = s.created_at AS untouched
  FROM rk_before b, fstore.feature_services s WHERE s.name = 'rk';
-- a prepared statement, then a compatible change (same columns and types)
PREPARE rk_stmt(fstore.rk_request[]) AS
    SELECT doc_id, q2 FROM fs_get_many(NULL::fstore_online.rk, $1);
EXECUTE rk_stmt(ARRAY[ROW(1, 100), ROW(1, 101)]::fstore.rk_request[]);
SELECT fs_create_feature_service('rk',
    ARRAY['rk_u.clicks_7d', 'rk_u.views_7d', 'rk_u.last_open_ts', 'rk_d.quality', 'rk_ud.affinity'],
    derived => ARRAY['extract(epoch from now() - last_open_ts) AS secs_since_open',
                     'clicks_7d::real / nullif(views_7d, 0) AS ctr_7d',
                     'quality * 3 AS q2'], or_replace => true);
EXECUTE rk_stmt(ARRAY[ROW(1, 100), ROW(1, 101)]::fstore.rk_request[]);
SELECT b.row_oid = 'fstore_online.rk'::regtype::oid AS same_row_type,
       b.req_oid = 'fstore.rk_request'::regtype::oid AS same_request_type
  FROM rk_before b;
-- an incompatible change fails and changes nothing
SELECT t.err($$SELECT fs_create_feature_service('rk', ARRAY['rk_u.clicks_7d', 'rk_d.quality'], or_replace => true)$$);
\set SHOW_CONTEXT never
SELECT fs_create_feature_service('rk', ARRAY['rk_u.clicks_7d', 'rk_d.quality'], or_replace => true);
\set SHOW_CONTEXT errors
EXECUTE rk_stmt(ARRAY[ROW(1, 100)]::fstore.rk_request[]);
SELECT t.err($$SELECT fs_create_feature_service('rk', ARRAY['rk_u.*'], or_replace => NULL)$$);

-- drop and create again: statements that name the service by its row type
-- are planned again; one whose shape changed fails cleanly
PREPARE rk_same AS SELECT doc_id, affinity FROM fs_get_many(NULL::fstore_online.rk,
    ARRAY[ROW(1, 100)]::fstore.rk_request[]);
PREPARE rk_star AS SELECT * FROM fs_get_many(NULL::fstore_online.rk_docs, ARRAY[100]::bigint[]);
PREPARE rk_typed(fstore.rk_request[]) AS
    SELECT doc_id, affinity FROM fs_get_many(NULL::fstore_online.rk, $1);
EXECUTE rk_same;
EXECUTE rk_star;
EXECUTE rk_typed('{"(1,100)"}');
CREATE TEMP TABLE rk_req_oid AS SELECT 'fstore.rk_request'::regtype::oid AS oid;
SELECT fs_drop_feature_service('rk');
SELECT t.err('EXECUTE rk_same');
-- the request type stays, and the service created again takes it over
SELECT fs_create_feature_service('rk', ARRAY['rk_ud.affinity', 'rk_d.quality']);
SELECT oid = 'fstore.rk_request'::regtype::oid AS same_request_type FROM rk_req_oid;
EXECUTE rk_same;
EXECUTE rk_typed('{"(1,100)"}');
-- created again with other request columns: the type is altered in place,
-- and a statement bound with the old columns gets a clear error
SELECT fs_drop_feature_service('rk');
SELECT fs_create_feature_service('rk', ARRAY['rk_d.quality', 'rk_d.lang']);
SELECT oid = 'fstore.rk_request'::regtype::oid AS same_request_type FROM rk_req_oid;
SELECT t.err($$EXECUTE rk_typed('{"(1,100)"}')$$);
SELECT t.err($$EXECUTE rk_typed('{"(100)","(7)"}')$$);
SELECT * FROM fs_get_many(NULL::fstore_online.rk, ARRAY[ROW(101)]::fstore.rk_request[]);
SELECT fs_drop_feature_service('rk_docs');
SELECT fs_create_feature_service('rk_docs', ARRAY['rk_d.quality']);
SELECT t.err('EXECUTE rk_star');
DEALLOCATE ALL;

-- training sets: the entity query gives the request columns; derived
-- features use the label's timestamp as now()
SELECT fs_create_feature_view('rk_u2', 'rk_user', 'last_open timestamptz');
SELECT * FROM fs_write('rk_u2', ARRAY[ROW(1, '2026-01-01 00:00+00', '2026-01-01 00:00+00')]::fstore_online.rk_u2[]);
SELECT fs_create_feature_service('rk_t', ARRAY['rk_u2.last_open', 'rk_d.quality', 'rk_ud.affinity'],
    derived => ARRAY['extract(epoch from now() - last_open) AS secs', 'coalesce(affinity, 0::real) + quality AS score']);
CREATE TABLE public.rk_labels (user_id bigint, doc_id bigint, event_ts timestamptz, label int);
INSERT INTO public.rk_labels VALUES
    (1, 100, '2026-01-01 00:01:40+00', 1),
    (1, 101, '2026-01-01 01:00:00+00', 0),
    (2, 101, '2026-01-01 00:00:00+00', 1),
    (1, 100, '2025-12-31 00:00:00+00', 0);
SELECT fs_create_training_set('rk_lateral', 'SELECT * FROM public.rk_labels', ARRAY['rk_t'], strategy => 'lateral');
SELECT fs_create_training_set('rk_hash', 'SELECT * FROM public.rk_labels', ARRAY['rk_t.*'], strategy => 'hash');
SELECT * FROM fstore_training.rk_lateral;
SELECT (SELECT array_agg(l ORDER BY ord) FROM (SELECT l, row_number() OVER () AS ord FROM fstore_training.rk_lateral l) x)::text
     = (SELECT array_agg(h ORDER BY ord) FROM (SELECT h, row_number() OVER () AS ord FROM fstore_training.rk_hash h) x)::text
       AS strategies_agree;
-- online, the same expression with now(): offline and online agree
BEGIN;
SELECT secs = extract(epoch FROM now() - '2026-01-01 00:00+00'::timestamptz) AS secs_agree, score
  FROM fs_get_many(NULL::fstore_online.rk_t, ARRAY[ROW(1, 100)]::fstore.rk_t_request[]);
COMMIT;
-- the expressions run with the rights of who builds the set: the owner's
SET ROLE rk_reader;
SELECT t.err($$SELECT fs_training_set_query('SELECT 1::bigint AS user_id, 100::bigint AS doc_id, now() AS event_ts', ARRAY['rk_t'])$$);
RESET ROLE;

-- clean up
SELECT fs_drop_training_set('rk_lateral');
SELECT fs_drop_training_set('rk_hash');
DROP TABLE public.rk_labels;
SELECT fs_drop_feature_service(s) FROM unnest(ARRAY['rk', 'rk_docs', 'rk_p', 'rk_q', 'rk_div', 'rk_t']) s;
-- the row types are gone, the request types stay until dropped by hand
SELECT count(*) FROM pg_class WHERE relnamespace = 'fstore_online'::regnamespace AND relkind = 'c' AND relname LIKE 'rk%';
SELECT string_agg(typname, ', ' ORDER BY typname) FROM pg_type
 WHERE typnamespace = 'fstore'::regnamespace AND typname LIKE 'rk%request';
DROP TYPE fstore.rk_request, fstore.rk_docs_request, fstore.rk_p_request, fstore.rk_q_request,
    fstore.rk_div_request, fstore.rk_t_request, fstore.rk_bad_request;
SELECT fs_drop_feature_view(v) FROM unnest(ARRAY['rk_u', 'rk_u2', 'rk_d', 'rk_ud', 'rk_ut']) v;
SELECT fs_drop_entity(e) FROM unnest(ARRAY['rk_user', 'rk_doc', 'rk_user_doc', 'rk_user_t']) e;
DROP FUNCTION public.rk_half(real), public.rk_who();
DROP ROLE rk_reader;
