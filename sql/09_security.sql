-- The security model: no role gains rights through fstore.  Each block
-- tries one attack as a non-superuser role and checks that its code never
-- ran with more rights than its owner's (the log records who ran it).
-- Stream workers and the database-level attacks are in test/t/006_security.pl.

-- who ran planted code, and whether as a superuser
CREATE TABLE public.sec_log (who name, su bool, what text);
GRANT INSERT, SELECT ON public.sec_log TO PUBLIC;
CREATE FUNCTION public.sec_note(what text) RETURNS bool
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO public.sec_log
    SELECT current_user, r.rolsuper, what FROM pg_catalog.pg_roles r
     WHERE r.rolname = current_user;
    RETURN true;
END
$$;

-- this file drains queues itself
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone() AS workers;

CREATE ROLE fs_sec_attacker;
GRANT CREATE ON SCHEMA public TO fs_sec_attacker;

-- A feature admin set up as docs/operations.md says (delegated definitions).
CREATE ROLE fs_sec_admin;
GRANT CREATE ON SCHEMA fstore, fstore_online, fstore_offline, fstore_stream TO fs_sec_admin;
GRANT INSERT, UPDATE, DELETE ON fstore.entities, fstore.feature_views, fstore.features,
    fstore.feature_services, fstore.service_features, fstore.view_state,
    fstore.materialization_runs, fstore.dead_letters TO fs_sec_admin;
GRANT USAGE ON SEQUENCE fstore.feature_views_view_id_seq TO fs_sec_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fstore TO fs_sec_admin;
GRANT CREATE, USAGE ON SCHEMA public TO fs_sec_admin;

-- ---------------------------------------------------------------------------
-- 1. The extension's own functions: none SECURITY DEFINER, every SQL and
--    PL/pgSQL one with a pinned search_path, helpers not for PUBLIC except
--    the listed ones.
-- ---------------------------------------------------------------------------
SELECT p.oid::regprocedure AS security_definer
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'fstore'
 WHERE p.prosecdef;
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'fstore'
  JOIN pg_language l ON l.oid = p.prolang
 WHERE l.lanname <> 'c' AND p.prokind <> 'a'
   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
 ORDER BY p.oid::regprocedure::text;
-- aggregates cannot pin a search_path: theirs run C functions only
SELECT a.aggfnoid::regprocedure AS aggregate, l1.lanname AS sfunc, l2.lanname AS finalfunc
  FROM pg_aggregate a JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = a.aggfnoid
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'fstore'
  JOIN pg_proc s ON s.oid = a.aggtransfn JOIN pg_language l1 ON l1.oid = s.prolang
  LEFT JOIN pg_proc f ON f.oid = a.aggfinalfn LEFT JOIN pg_language l2 ON l2.oid = f.prolang
 ORDER BY a.aggfnoid::regprocedure::text;
SELECT p.oid::regprocedure AS public_helper
  FROM pg_proc p
 WHERE p.pronamespace = 'fstore'::regnamespace
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

-- ---------------------------------------------------------------------------
-- 2. Name resolution is never the caller's: functions planted in public
--    that beat pg_catalog's for the types fstore uses.
-- ---------------------------------------------------------------------------
SET ROLE fs_sec_attacker;
CREATE FUNCTION public.cardinality(name[]) RETURNS int
LANGUAGE sql AS $$ SELECT CASE WHEN public.sec_note('cardinality') THEN pg_catalog.cardinality($1::text[]) END $$;
CREATE FUNCTION public.sec_eq(bigint, bigint) RETURNS bool
LANGUAGE sql AS $$ SELECT public.sec_note('int8eq') AND $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.sec_eq);
CREATE FUNCTION public.sec_texteq(text, text) RETURNS bool
LANGUAGE sql AS $$ SELECT public.sec_note('texteq') AND $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.sec_texteq);
RESET ROLE;

-- a superuser's session that (carelessly) searches public first
SET search_path = public, pg_catalog;
SELECT fs_create_entity('sec_doc', 'doc_id bigint');
SELECT fs_create_feature_view('sec_plain', 'sec_doc', 'a int');
SELECT * FROM fs_write('sec_plain', ARRAY[ROW(1, 10, '2026-01-01'), ROW(2, 20, '2026-01-02')]::fstore_online.sec_plain[]);
SELECT doc_id, a FROM fs_get_many(NULL::fstore_online.sec_plain, ARRAY[2, 1, 3]::bigint[]);
SELECT * FROM fs_write_query('sec_plain', 'SELECT 3::bigint, 30, ''2026-01-03''::timestamptz');
CREATE TABLE public.sec_labels AS SELECT 1::bigint AS doc_id, '2026-02-01'::timestamptz AS event_ts;
SELECT fs_create_training_set('sec_ts', 'SELECT doc_id, event_ts FROM public.sec_labels',
                              ARRAY['sec_plain.a'], strategy => 'lateral');
SELECT fs_create_training_set('sec_ts2', 'SELECT doc_id, event_ts FROM public.sec_labels',
                              ARRAY['sec_plain.a'], strategy => 'hash');
SELECT * FROM fstore_training.sec_ts;
-- the SQL fs_training_set_query returns qualifies its operators too
SELECT format('SELECT count(*) AS rows FROM (%s) q',
              fs_training_set_query('SELECT doc_id, event_ts FROM public.sec_labels',
                                    ARRAY['sec_plain.a'], strategy => 'lateral')) \gexec
SELECT view_name, queue_depth FROM fstore.freshness WHERE view_name OPERATOR(pg_catalog.=) 'sec_plain';
SELECT view_name, queue_depth FROM fstore.stats WHERE view_name OPERATOR(pg_catalog.=) 'sec_plain';
RESET search_path;
-- nothing planted ran
SELECT who, su, what FROM public.sec_log;
DROP OPERATOR public.= (bigint, bigint);
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.cardinality(name[]), public.sec_eq(bigint, bigint), public.sec_texteq(text, text);

-- ---------------------------------------------------------------------------
-- 3. A view's owner's code runs as the view's owner, never as the caller:
--    triggers when a superuser drains the queue, the source query when a
--    superuser materializes.
-- ---------------------------------------------------------------------------
SET ROLE fs_sec_admin;
SELECT fs_create_feature_view('sec_owned', 'sec_doc', 'a int');
CREATE FUNCTION public.sec_trig() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN PERFORM public.sec_note('trigger'); RETURN NEW; END $$;
CREATE TRIGGER sec_trig BEFORE INSERT OR UPDATE ON fstore_online.sec_owned
    FOR EACH ROW EXECUTE FUNCTION public.sec_trig();
CREATE TABLE public.sec_src (doc_id bigint, a int, ts timestamptz);
INSERT INTO public.sec_src VALUES (1, 1, '2026-01-01'), (2, 2, '2026-01-02');
SELECT fs_create_feature_view('sec_src_v', 'sec_doc', 'a int',
    source_query => 'SELECT doc_id, a, ts AS event_ts FROM public.sec_src WHERE public.sec_note(''source'')');
RESET ROLE;
INSERT INTO fstore_stream.sec_owned VALUES (1, 1, '2026-01-01'), (2, 2, '2026-01-02');
SELECT events, applied FROM fs_stream_apply('sec_owned');
SELECT read, written FROM fs_materialize('sec_src_v', until => '2026-06-01');
SELECT DISTINCT who, su, what FROM public.sec_log ORDER BY what;
TRUNCATE public.sec_log;

-- ---------------------------------------------------------------------------
-- 4. Creating a view with a source checks that the creator may read it.
-- ---------------------------------------------------------------------------
CREATE SCHEMA sec_hr;
CREATE TABLE sec_hr.salaries (doc_id bigint, salary int, event_ts timestamptz);
GRANT USAGE ON SCHEMA sec_hr TO fs_sec_admin;
SET ROLE fs_sec_admin;
SELECT t.err($$SELECT fs_create_feature_view('sec_sal', 'sec_doc', source => 'sec_hr.salaries'::regclass)$$);
SELECT t.err($$SELECT fs_create_feature_view('sec_sal', 'sec_doc', source_query => 'SELECT doc_id, salary, event_ts FROM sec_hr.salaries')$$);
RESET ROLE;
SELECT count(*) FROM fstore.feature_views WHERE name = 'sec_sal';
-- with a column grant on what the view needs, it may
GRANT SELECT (doc_id, salary, event_ts) ON sec_hr.salaries TO fs_sec_admin;
SET ROLE fs_sec_admin;
SELECT fs_create_feature_view('sec_sal', 'sec_doc', source => 'sec_hr.salaries'::regclass);
RESET ROLE;

-- ---------------------------------------------------------------------------
-- 5. Monitoring never evaluates a relation a view owner could replace:
--    a queue table swapped for a view, or turned into one by a rule.
-- ---------------------------------------------------------------------------
SET ROLE fs_sec_admin;
SELECT fs_create_feature_view('sec_q1', 'sec_doc', 'a int');
SELECT fs_create_feature_view('sec_q2', 'sec_doc', 'a int');
DROP TABLE fstore_stream.sec_q1;
CREATE VIEW fstore_stream.sec_q1 AS
    SELECT 1::bigint AS doc_id, 1 AS a, now() AS event_ts WHERE public.sec_note('queue view');
DROP TRIGGER fstore_enqueued ON fstore_stream.sec_q2;
VACUUM fstore_stream.sec_q2;	-- clears relhastriggers, which the rule needs
CREATE RULE "_RETURN" AS ON SELECT TO fstore_stream.sec_q2 DO INSTEAD
    SELECT 1::bigint AS doc_id, 1 AS a, now() AS event_ts WHERE public.sec_note('queue rule');
RESET ROLE;
SELECT view_name, queue_depth FROM fstore.stats WHERE view_name LIKE 'sec_q%' ORDER BY 1;
SELECT view_name, queue_depth, queue_lag FROM fstore.freshness WHERE view_name LIKE 'sec_q%' ORDER BY 1;
SELECT count(*) FROM fs_check_freshness();
SELECT t.err($$SELECT fs_stream_apply('sec_q1')$$);
SELECT t.err($$SELECT fs_stream_apply('sec_q2')$$);
SELECT who, su, what FROM public.sec_log;

-- ---------------------------------------------------------------------------
-- 6. Dead letters run no code of the view's types' owners: an enum owner's
--    cast to json, an event with a NULL key, drained by a superuser.
-- ---------------------------------------------------------------------------
SET ROLE fs_sec_attacker;
CREATE TYPE public.sec_mood AS ENUM ('happy', 'sad');
CREATE FUNCTION public.sec_mood_json(public.sec_mood) RETURNS json
LANGUAGE sql AS $$ SELECT CASE WHEN public.sec_note('cast') THEN pg_catalog.to_json($1::text) END $$;
CREATE CAST (public.sec_mood AS json) WITH FUNCTION public.sec_mood_json(public.sec_mood);
RESET ROLE;
SELECT fs_create_feature_view('sec_enum', 'sec_doc', 'mood public.sec_mood, n numeric, ok bool, j jsonb');
GRANT INSERT ON fstore_stream.sec_enum TO fs_sec_attacker;
SET ROLE fs_sec_attacker;
INSERT INTO fstore_stream.sec_enum VALUES (NULL, 'sad', 'NaN', true, '{"x": [1, 2]}', '2026-01-01');
RESET ROLE;
SELECT events, applied, dead_letters FROM fs_stream_apply('sec_enum');
SELECT event, sqlstate FROM fstore.dead_letters WHERE view_name = 'sec_enum';
SELECT who, su, what FROM public.sec_log;
-- the cast exists: this superuser's own to_jsonb runs it (and it logs)
SELECT to_jsonb('sad'::public.sec_mood);
SELECT who, su, what FROM public.sec_log;
TRUNCATE public.sec_log;

-- ---------------------------------------------------------------------------
-- 7. Names are data, never SQL.
-- ---------------------------------------------------------------------------
SELECT t.err($$SELECT fs_create_feature_view('x; DROP TABLE public.sec_log; --', 'sec_doc', 'a int')$$);
SELECT t.err($$SELECT fs_create_feature_view('sec_inj', 'sec_doc', 'a int); DROP TABLE public.sec_log; --')$$);
SELECT t.err($$SELECT fs_materialize('sec_plain''; DROP TABLE public.sec_log; --')$$);
SELECT count(*) FROM public.sec_log;

-- ---------------------------------------------------------------------------
-- 8. One feature admin cannot change another's rows in the catalogs:
--    redirect its source, move its watermark, add a feature, drop its
--    dead letters or records.
-- ---------------------------------------------------------------------------
CREATE ROLE fs_sec_admin2;
GRANT CREATE ON SCHEMA fstore, fstore_online, fstore_offline, fstore_stream TO fs_sec_admin2;
GRANT INSERT, UPDATE, DELETE ON fstore.entities, fstore.feature_views, fstore.features,
    fstore.feature_services, fstore.service_features, fstore.view_state,
    fstore.materialization_runs, fstore.dead_letters TO fs_sec_admin2;
GRANT SELECT ON fstore.dead_letters TO fs_sec_admin2;
GRANT USAGE ON SEQUENCE fstore.feature_views_view_id_seq TO fs_sec_admin2;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA fstore TO fs_sec_admin2;
-- services of another role: one dropped (its request type stays), one kept
SELECT fs_create_feature_service('sec_svc_gone', ARRAY['sec_owned.a']);
SELECT fs_drop_feature_service('sec_svc_gone');
SELECT fs_create_feature_service('sec_svc_kept', ARRAY['sec_owned.a']);
SET ROLE fs_sec_admin2;
SELECT t.err($$UPDATE fstore.feature_views SET source_query = 'SELECT 1::bigint AS doc_id, 1 AS a, now() AS event_ts' WHERE name = 'sec_src_v'$$);
SELECT t.err($$UPDATE fstore.view_state SET watermark = 'infinity' WHERE view_id = (SELECT view_id FROM fstore.feature_views WHERE name = 'sec_src_v')$$);
SELECT t.err($$INSERT INTO fstore.features VALUES ('sec_src_v', 2, 'b', 'integer')$$);
SELECT t.err($$DELETE FROM fstore.materialization_runs WHERE view_name = 'sec_src_v'$$);
SELECT t.err($$DELETE FROM fstore.feature_views WHERE name = 'sec_owned'$$);
SELECT t.err($$SELECT fs_set_freshness_target('sec_owned', '1 hour')$$);
-- its own view it may change
SELECT fs_create_feature_view('sec_own2', 'sec_doc', 'a int');
SELECT fs_set_freshness_target('sec_own2', '1 hour');
-- a request type another role's dropped service left is not taken over,
-- and another role's service is not replaced
SELECT t.err($$SELECT fs_create_feature_service('sec_svc_gone', ARRAY['sec_own2.a'])$$);
SELECT t.err($$SELECT fs_create_feature_service('sec_svc_kept', ARRAY['sec_own2.a AS a'], or_replace => true)$$);
SELECT fs_drop_feature_view('sec_own2');
RESET ROLE;
SELECT view_name FROM fstore.service_features WHERE service = 'sec_svc_kept';
SELECT fs_drop_feature_service('sec_svc_kept');
DROP TYPE fstore.sec_svc_gone_request, fstore.sec_svc_kept_request;
SELECT source_query IS NOT NULL AS unchanged FROM fstore.feature_views WHERE name = 'sec_src_v';
SELECT count(*) FROM fstore.materialization_runs WHERE view_name = 'sec_src_v';
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA fstore FROM fs_sec_admin2;
REVOKE ALL ON ALL TABLES IN SCHEMA fstore FROM fs_sec_admin2;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA fstore FROM fs_sec_admin2;
REVOKE ALL ON SCHEMA fstore, fstore_online, fstore_offline, fstore_stream FROM fs_sec_admin2;
DROP ROLE fs_sec_admin2;

-- clean up
SELECT fs_drop_feature_view(v) FROM unnest(ARRAY['sec_plain', 'sec_owned', 'sec_src_v', 'sec_sal',
    'sec_enum']) v;
DROP VIEW fstore_stream.sec_q1, fstore_stream.sec_q2;
SELECT fs_drop_feature_view('sec_q1');
SELECT fs_drop_feature_view('sec_q2');
SELECT fs_drop_training_set('sec_ts');
SELECT fs_drop_training_set('sec_ts2');
SELECT fs_drop_entity('sec_doc');
DROP CAST (public.sec_mood AS json);
DROP SCHEMA sec_hr CASCADE;
DROP TABLE public.sec_labels, public.sec_src, public.sec_log;
DROP FUNCTION public.sec_trig(), public.sec_mood_json(public.sec_mood), public.sec_note(text);
DROP TYPE public.sec_mood;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA fstore FROM fs_sec_admin;
REVOKE ALL ON ALL TABLES IN SCHEMA fstore FROM fs_sec_admin;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA fstore FROM fs_sec_admin;
REVOKE ALL ON SCHEMA fstore, fstore_online, fstore_offline, fstore_stream, public FROM fs_sec_admin;
REVOKE ALL ON SCHEMA public FROM fs_sec_attacker;
DROP ROLE fs_sec_admin;
DROP ROLE fs_sec_attacker;
ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
