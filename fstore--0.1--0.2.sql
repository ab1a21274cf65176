/*
 * fstore 0.1 -> 0.2 (ALTER EXTENSION fstore UPDATE).
 *
 * Gives a database created with 0.1 the extension a fresh CREATE EXTENSION
 * of 0.2 makes (fstore--0.2.sql), keeping every catalog row, per-view
 * table, training set and statistic.  test/t/009_upgrade.pl compares the
 * two, object by object.
 *
 *   catalogs      the view_id default written as 0.2 writes it; the row
 *                 guard (fstore._catalog_guard) on every catalog table
 *   functions     every SQL and PL/pgSQL function replaced by its 0.2 text:
 *                 pinned search_path, and the bodies 0.2 changed
 *                 (source privileges, qualified training-set SQL, typed
 *                 pg_cron command); fstore._eq_operator added
 *   monitoring    fstore.stats, fstore.freshness and fs_check_freshness()
 *                 recreated (new columns; queue state read by C functions
 *                 instead of the SECURITY DEFINER _queue_depth/_queue_state)
 *   privileges    helpers revoked from PUBLIC, as in 0.2 (grants made to
 *                 other roles are kept, and still dumped by pg_dump)
 *   pg_cron       the jobs fs_schedule_materialize made get 0.2's command
 *   definitions   (issue 13) fs_alter_feature_view; or_replace on
 *                 fs_create_entity, fs_create_feature_view and
 *                 fs_schedule_materialize; lookback on fs_materialize and
 *                 fs_schedule_materialize (changed signatures: created anew
 *                 with the old functions' privileges); failed runs in
 *                 fstore.materialization_runs (status, error, sqlstate,
 *                 lookback columns) and in fstore.freshness /
 *                 fs_check_freshness; fstore.progress; view names cascade
 *                 to fstore.features and fstore.service_features
 *
 * The library must be 0.2's already (install, restart, then update: see
 * docs/operations.md, "Upgrades").
 */

\echo Use "ALTER EXTENSION fstore UPDATE TO '0.2'" to load this file. \quit

-- As in fstore--0.2.sql: nothing below resolves a name through a schema
-- other roles can write.
SET LOCAL search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Catalogs
-- ---------------------------------------------------------------------------

-- 0.1 wrote nextval('fstore.feature_views_view_id_seq'), which resolved
-- through the installer's search_path (a public.nextval(text) created
-- beforehand bound instead of pg_catalog's).  The default of 0.2:
ALTER TABLE fstore.feature_views ALTER COLUMN view_id
    SET DEFAULT pg_catalog.nextval('fstore.feature_views_view_id_seq'::pg_catalog.regclass);

-- Services across entities (entity NULL), their request types and their
-- derived features.
ALTER TABLE fstore.feature_services ALTER COLUMN entity DROP NOT NULL;
ALTER TABLE fstore.feature_services ADD COLUMN request_type regtype,
    ADD COLUMN derived name[], ADD COLUMN derived_types text[],
    ADD COLUMN derived_exprs text[];

-- Row trigger on the catalogs: a row describing a view, service, training
-- set or entity is written only with the rights of that object's owner
-- (src/catalog/guard.c).
CREATE FUNCTION fstore._catalog_guard() RETURNS trigger
AS 'MODULE_PATHNAME', 'fs_catalog_guard'
LANGUAGE C;

-- Every catalog table gets the row guard.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'entities', 'feature_views', 'features', 'feature_services',
        'service_features', 'view_state', 'materialization_runs',
        'dead_letters', 'training_sets']
    LOOP
        EXECUTE pg_catalog.format('CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE ON fstore.%I FOR EACH ROW EXECUTE FUNCTION fstore._catalog_guard()', t);
    END LOOP;
END
$$;

-- Failed fs_materialize runs are recorded too (status, error, SQLSTATE;
-- their counts are NULL), and each run its lookback.
ALTER TABLE fstore.materialization_runs
    ALTER COLUMN read DROP NOT NULL,
    ALTER COLUMN written DROP NOT NULL,
    ALTER COLUMN unchanged DROP NOT NULL,
    ALTER COLUMN late DROP NOT NULL,
    ADD COLUMN status text NOT NULL DEFAULT 'succeeded'
        CHECK (status IN ('succeeded', 'failed')),
    ADD COLUMN lookback interval,
    ADD COLUMN error text,
    ADD COLUMN sqlstate text;

-- A view renamed by fs_alter_feature_view takes its features and the
-- services' references along.
ALTER TABLE fstore.features
    DROP CONSTRAINT features_view_name_fkey,
    ADD CONSTRAINT features_view_name_fkey FOREIGN KEY (view_name)
        REFERENCES fstore.feature_views (name) ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE fstore.service_features
    DROP CONSTRAINT service_features_view_name_fkey,
    ADD CONSTRAINT service_features_view_name_fkey FOREIGN KEY (view_name)
        REFERENCES fstore.feature_views (name) ON UPDATE CASCADE;

-- ---------------------------------------------------------------------------
-- Functions
-- ---------------------------------------------------------------------------

-- Every SQL and PL/pgSQL function of 0.2, as fstore--0.2.sql defines it.
-- Where their signatures and result types are 0.1's, CREATE OR REPLACE
-- keeps each function's identity, its privileges and what depends on it;
-- it replaces the body and the settings (SET search_path).
-- fs_create_entity, fs_create_feature_view (or_replace),
-- fs_schedule_materialize (lookback, or_replace) and fs_materialize
-- (lookback) gain parameters: they are created anew, given the privileges
-- of the 0.1 function, which is then dropped (see "Changed signatures").
-- fs_check_freshness changes its result type: it is recreated below, with
-- the monitoring views.

-- Validates an object name: a lowercase SQL identifier of at most maxlen
-- bytes.  Returns it unchanged.
CREATE OR REPLACE FUNCTION fstore._check_name(p_name text, p_kind text, p_maxlen int DEFAULT 63)
RETURNS text LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF p_name IS NULL THEN
        RAISE EXCEPTION '% name must not be NULL', p_kind
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF p_name !~ '^[a-z_][a-z0-9_]*$' OR octet_length(p_name) > p_maxlen THEN
        RAISE EXCEPTION 'invalid % name "%"', p_kind, p_name
            USING ERRCODE = 'invalid_name',
                  DETAIL = format('Names must be lowercase SQL identifiers: a letter or underscore followed by letters, digits or underscores, at most %s bytes.', p_maxlen);
    END IF;
    RETURN p_name;
END
$fn$;

-- Serializes catalog changes (creation and drop of entities, views and
-- services) against each other.
CREATE OR REPLACE FUNCTION fstore._lock_catalog() RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp AS $fn$
    LOCK TABLE fstore.entities IN SHARE ROW EXCLUSIVE MODE;
$fn$;

CREATE OR REPLACE FUNCTION fstore._entity_exists(p_name text) RETURNS bool
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT EXISTS (SELECT 1 FROM fstore.entities e WHERE e.name = p_name);
$fn$;

-- Column definitions of an entity's keys, as SQL ('"a" bigint, "b" text').
CREATE OR REPLACE FUNCTION fstore._key_defs(p_entity text, p_not_null bool DEFAULT false) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT string_agg(format('%I %s', c, t) || CASE WHEN p_not_null THEN ' NOT NULL' ELSE '' END,
                      ', ' ORDER BY i)
      FROM fstore.entities e,
           unnest(e.key_columns, e.key_types) WITH ORDINALITY AS k(c, t, i)
     WHERE e.name = p_entity;
$fn$;

-- The quoted key column list of an entity ('"a", "b").
CREATE OR REPLACE FUNCTION fstore._key_list(p_entity text, p_prefix text DEFAULT '') RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT string_agg(p_prefix || quote_ident(c), ', ' ORDER BY i)
      FROM fstore.entities e, unnest(e.key_columns) WITH ORDINALITY AS k(c, i)
     WHERE e.name = p_entity;
$fn$;

-- The equality operator of a type's default btree operator class, written
-- schema-qualified (OPERATOR(schema.=)) for SQL that fstore generates.
CREATE FUNCTION fstore._eq_operator(p_type regtype) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT coalesce(
        (SELECT format('OPERATOR(%I.%s)', n.nspname, o.oprname)
           FROM pg_catalog.pg_opclass c
           JOIN pg_catalog.pg_am am ON am.oid = c.opcmethod AND am.amname = 'btree'
           JOIN pg_catalog.pg_amop a ON a.amopfamily = c.opcfamily AND a.amopstrategy = 3
                AND a.amoplefttype = c.opcintype AND a.amoprighttype = c.opcintype
           JOIN pg_catalog.pg_operator o ON o.oid = a.amopopr
           JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
          WHERE c.opcdefault AND c.opcintype = p_type
          LIMIT 1),
        'OPERATOR(pg_catalog.=)');
$fn$;

CREATE FUNCTION @extschema@.fs_create_entity(name text, keys text,
    or_replace boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name  text := fstore._check_name($1, 'entity', 59);
    v_cols  name[] := '{}';
    v_types text[] := '{}';
    v_defs  text[] := '{}';
    v_key_type regtype;
    r record;
BEGIN
    IF keys IS NULL THEN
        RAISE EXCEPTION 'key columns of entity "%" must not be NULL', v_name
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM fstore._lock_catalog();
    IF fstore._entity_exists(v_name) AND NOT coalesce(or_replace, false) THEN
        RAISE EXCEPTION 'entity "%" already exists', v_name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Pass or_replace => true to accept an identical definition.';
    END IF;

    FOR r IN SELECT * FROM fstore._parse_columns(keys) LOOP
        IF r.colname IN ('event_ts', 'created_at') THEN
            RAISE EXCEPTION 'key column name "%" is reserved', r.colname
                USING ERRCODE = 'reserved_name',
                      DETAIL = 'fstore uses event_ts and created_at for its own columns.';
        END IF;
        IF NOT r.has_btree OR NOT r.has_hash THEN
            RAISE EXCEPTION 'key column "%" has type %, which cannot be a key', r.colname, r.typesql
                USING ERRCODE = 'undefined_object',
                      DETAIL = 'Key types need a default btree and a default hash operator class.';
        END IF;
        v_cols := v_cols || r.colname;
        v_types := v_types || r.typesql;
        v_defs := v_defs || format('%I %s', r.colname, r.typesql);
    END LOOP;

    IF cardinality(v_cols) = 0 THEN
        RAISE EXCEPTION 'entity "%" needs at least one key column', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(v_cols) > 16 THEN
        RAISE EXCEPTION 'entity "%" has % key columns, at most 16 are allowed', v_name, cardinality(v_cols)
            USING ERRCODE = 'too_many_columns';
    END IF;

    -- or_replace: the same keys are a no-op; other keys are another entity
    IF fstore._entity_exists(v_name) THEN
        IF EXISTS (SELECT 1 FROM fstore.entities e
                    WHERE e.name = v_name AND e.key_columns = v_cols AND e.key_types = v_types) THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'entity "%" already exists with other key columns', v_name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = format('Its keys are %s; the new definition has %s.',
                                  fstore._key_defs(v_name), array_to_string(v_defs, ', ')),
                  HINT = 'Key columns cannot change: create an entity with another name.';
    END IF;

    IF cardinality(v_cols) = 1 THEN
        v_key_type := (SELECT c.coltype FROM fstore._parse_columns(keys) c);
    ELSE
        EXECUTE format('CREATE TYPE fstore.%I AS (%s)', v_name || '_key',
                       array_to_string(v_defs, ', '));
        v_key_type := format('fstore.%I', v_name || '_key')::regtype;
    END IF;

    INSERT INTO fstore.entities (name, key_columns, key_types, key_type)
    VALUES (v_name, v_cols, v_types, v_key_type);
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_drop_entity(name text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name text := $1;
    v_users text;
    v_composite bool;
BEGIN
    PERFORM fstore._lock_catalog();
    IF v_name IS NULL OR NOT fstore._entity_exists(v_name) THEN
        RAISE EXCEPTION 'entity "%" does not exist', v_name
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT string_agg(v.name, ', ' ORDER BY v.name)
      INTO v_users FROM fstore.feature_views v WHERE v.entity = v_name;
    IF v_users IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop entity "%" because other objects depend on it', v_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Feature views using it: %s.', v_users),
                  HINT = 'Drop the feature views first.';
    END IF;
    SELECT string_agg(s.name, ', ' ORDER BY s.name)
      INTO v_users FROM fstore.feature_services s WHERE s.entity = v_name;
    IF v_users IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop entity "%" because other objects depend on it', v_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Feature services using it: %s.', v_users),
                  HINT = 'Drop the feature services first.';
    END IF;
    SELECT string_agg(a.name, ', ' ORDER BY a.name)
      INTO v_users FROM fstore.aggregation_views a WHERE a.entity = v_name;
    IF v_users IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop entity "%" because other objects depend on it', v_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Aggregation views using it: %s.', v_users),
                  HINT = 'Drop the aggregation views first.';
    END IF;
    DELETE FROM fstore.entities e WHERE e.name = v_name
    RETURNING cardinality(e.key_columns) > 1 INTO v_composite;
    IF v_composite THEN
        EXECUTE format('DROP TYPE fstore.%I', v_name || '_key');
    END IF;
END
$fn$;

-- Checks the columns p_cols a view needs from its batch source when the
-- source is defined: each must exist in the relation p_source (named
-- p_name in the errors) and be readable by the role defining the view
-- (fs_materialize reads the source as the view's owner; p_denied is the
-- DETAIL of a refusal, with %I for the column), or be returned by the
-- query p_query.  p_what names the view's own columns in the DETAIL
-- ('feature', 'event column').
CREATE FUNCTION fstore._check_source_columns(p_source regclass, p_query text,
    p_name text, p_cols name[], p_what text, p_denied text)
RETURNS void LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_detail text := format('A source must hold the entity''s key columns, the timestamp column and every %s.', p_what);
    v_qcols  name[];
    r record;
BEGIN
    IF p_source IS NOT NULL THEN
        FOR r IN
            SELECT x.col FROM unnest(p_cols) AS x(col)
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid = p_source AND a.attname = x.col
                                  AND a.attnum > 0 AND NOT a.attisdropped)
        LOOP
            RAISE EXCEPTION 'column "%" does not exist in source %', r.col, p_name
                USING ERRCODE = 'undefined_column', DETAIL = v_detail;
        END LOOP;
        FOR r IN
            SELECT x.col FROM unnest(p_cols) AS x(col)
             WHERE NOT pg_catalog.has_column_privilege(p_source, x.col, 'SELECT')
        LOOP
            RAISE EXCEPTION 'permission denied for source %', p_name
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format(p_denied, r.col);
        END LOOP;
    END IF;
    IF p_query IS NOT NULL THEN
        SELECT array_agg(c.colname) INTO v_qcols FROM fstore._query_columns(p_query) c;
        FOR r IN
            SELECT x.col FROM unnest(p_cols) AS x(col)
             WHERE x.col <> ALL (v_qcols)
        LOOP
            RAISE EXCEPTION 'column "%" is not returned by the source query', r.col
                USING ERRCODE = 'undefined_column', DETAIL = v_detail;
        END LOOP;
    END IF;
END
$fn$;

CREATE FUNCTION @extschema@.fs_create_feature_view(
    name text,
    entity text,
    features text DEFAULT NULL,
    source regclass DEFAULT NULL,
    timestamp_column name DEFAULT 'event_ts',
    ttl interval DEFAULT NULL,
    source_query text DEFAULT NULL,
    or_replace boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name    text := fstore._check_name($1, 'feature view');
    v_query   text;
    v_entity  text := $2;
    v_source  text;
    v_keys    name[];
    v_fnames  name[] := '{}';
    v_ftypes  text[] := '{}';
    v_fdefs   text := '';
    v_keydefs text;
    v_keylist text;
    v_id      bigint;
    v_replace bool := false;
    v_old     record;
    v_add     text;
    v_drop    name[];
    v_same    bool;
    r record;
    i int;
BEGIN
    PERFORM fstore._lock_catalog();
    IF v_entity IS NULL THEN
        RAISE EXCEPTION 'entity of feature view "%" must not be NULL', v_name
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT fstore._entity_exists(v_entity) THEN
        RAISE EXCEPTION 'entity "%" does not exist', v_entity
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT * INTO v_old FROM fstore.feature_views v WHERE v.name = v_name;
    IF FOUND THEN
        IF NOT coalesce(or_replace, false) THEN
            RAISE EXCEPTION 'feature view "%" already exists', v_name
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Pass or_replace => true to apply the definition to the existing view, or change it with fs_alter_feature_view.';
        END IF;
        IF v_old.entity <> v_entity THEN
            RAISE EXCEPTION 'feature view "%" already exists with entity "%"', v_name, v_old.entity
                USING ERRCODE = 'duplicate_object',
                      DETAIL = format('The new definition has entity "%s"; the entity (and so the key columns) of a view cannot change.', v_entity),
                      HINT = 'Create a view with another name, or drop this one first.';
        END IF;
        v_replace := true;
    END IF;
    IF EXISTS (SELECT 1 FROM fstore.feature_services s WHERE s.name = v_name) THEN
        RAISE EXCEPTION 'a feature service named "%" already exists', v_name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'Feature views and feature services share the fstore_online namespace.';
    END IF;
    IF ttl IS NOT NULL AND ttl <= interval '0' THEN
        RAISE EXCEPTION 'ttl of feature view "%" must be positive', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF timestamp_column IS NULL THEN
        RAISE EXCEPTION 'timestamp_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    SELECT e.key_columns INTO v_keys FROM fstore.entities e WHERE e.name = v_entity;

    IF source IS NOT NULL AND source_query IS NOT NULL THEN
        RAISE EXCEPTION 'feature view "%" can have a source or a source query, not both', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF source_query IS NOT NULL THEN
        v_query := fstore._check_select(source_query);
    END IF;

    IF features IS NULL THEN
        IF source IS NULL AND v_query IS NULL THEN
            RAISE EXCEPTION 'feature view "%" needs a feature list or a source', v_name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass features => ''name type, ...'', source => a table or view, or source_query => a query.';
        END IF;
        IF source IS NOT NULL THEN
            FOR r IN
                SELECT a.attname, fstore._type_sql(a.atttypid, a.atttypmod) AS t
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attname <> ALL (v_keys) AND a.attname <> timestamp_column
                 ORDER BY a.attnum
            LOOP
                v_fnames := v_fnames || r.attname;
                v_ftypes := v_ftypes || r.t;
            END LOOP;
        ELSE
            FOR r IN
                SELECT c.colname, c.typesql FROM fstore._query_columns(v_query) c
                 WHERE c.colname <> ALL (v_keys) AND c.colname <> timestamp_column
            LOOP
                v_fnames := v_fnames || r.colname;
                v_ftypes := v_ftypes || r.typesql;
            END LOOP;
        END IF;
    ELSE
        FOR r IN SELECT * FROM fstore._parse_columns(features) LOOP
            v_fnames := v_fnames || r.colname;
            v_ftypes := v_ftypes || r.typesql;
        END LOOP;
    END IF;

    IF cardinality(v_fnames) = 0 THEN
        RAISE EXCEPTION 'feature view "%" has no features', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. cardinality(v_fnames) LOOP
        IF v_fnames[i] = ANY (v_keys) THEN
            RAISE EXCEPTION 'feature "%" has the name of a key column of entity "%"', v_fnames[i], v_entity
                USING ERRCODE = 'duplicate_column';
        END IF;
        IF v_fnames[i] IN ('event_ts', 'created_at') THEN
            RAISE EXCEPTION 'feature name "%" is reserved', v_fnames[i]
                USING ERRCODE = 'reserved_name',
                      DETAIL = 'fstore uses event_ts and created_at for its own columns.';
        END IF;
        IF v_fnames[i] = ANY (v_fnames[1:i - 1]) THEN
            RAISE EXCEPTION 'feature "%" is listed more than once', v_fnames[i]
                USING ERRCODE = 'duplicate_column';
        END IF;
        v_fdefs := v_fdefs || format(', %I %s', v_fnames[i], v_ftypes[i]);
    END LOOP;

    IF source IS NOT NULL THEN
        SELECT format('%I.%I', n.nspname, c.relname) INTO v_source
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = source;
        PERFORM fstore._check_source_columns(source, NULL, v_source,
            v_keys || v_fnames || timestamp_column, 'feature',
            'Creating a feature view with a source needs SELECT on the source''s columns; %I is not readable by this role.');
        -- fs_materialize reads the source by time: say so if it cannot seek
        IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = source) IN ('r', 'p', 'm')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                            JOIN pg_catalog.pg_attribute a
                              ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                           WHERE i.indrelid = source AND a.attname = timestamp_column) THEN
            RAISE NOTICE 'source % has no index on %', v_source, quote_ident(timestamp_column)
                USING DETAIL = 'fs_materialize reads the source by time; without an index every run scans it whole.',
                      HINT = format('CREATE INDEX ON %s (%I);', v_source, timestamp_column);
        END IF;
    END IF;
    PERFORM fstore._check_source_columns(NULL, v_query, NULL,
        v_keys || v_fnames || timestamp_column, 'feature', NULL);

    -- or_replace on an existing view: an identical definition changes
    -- nothing; a compatible one is applied by fs_alter_feature_view
    IF v_replace THEN
        FOR i IN 1 .. cardinality(v_fnames) LOOP
            FOR r IN SELECT f.type FROM fstore.features f
                      WHERE f.view_name = v_name AND f.name = v_fnames[i] AND f.type <> v_ftypes[i] LOOP
                RAISE EXCEPTION 'feature "%" of feature view "%" has type %, the new definition has %',
                                v_fnames[i], v_name, r.type, v_ftypes[i]
                    USING ERRCODE = 'datatype_mismatch',
                          DETAIL = 'The type of a feature cannot change in place.',
                          HINT = 'Add the feature under another name (and drop the old one), or drop and create the view.';
            END LOOP;
        END LOOP;
        SELECT string_agg(format('%I %s', f.n, f.t), ', ' ORDER BY f.i) INTO v_add
          FROM unnest(v_fnames, v_ftypes) WITH ORDINALITY AS f(n, t, i)
         WHERE NOT EXISTS (SELECT 1 FROM fstore.features x
                            WHERE x.view_name = v_name AND x.name = f.n);
        SELECT array_agg(x.name ORDER BY x.position) INTO v_drop
          FROM fstore.features x
         WHERE x.view_name = v_name AND x.name <> ALL (v_fnames);
        v_same := v_old.source IS NOT DISTINCT FROM v_source
                  AND v_old.source_query IS NOT DISTINCT FROM v_query
                  AND v_old.timestamp_column = $5;
        IF v_add IS NULL AND v_drop IS NULL AND v_same
           AND v_old.ttl IS NOT DISTINCT FROM $6 THEN
            RETURN;
        END IF;
        PERFORM @extschema@.fs_alter_feature_view(v_name,
            add_features => v_add,
            drop_features => v_drop,
            ttl => $6,
            clear_ttl => $6 IS NULL AND v_old.ttl IS NOT NULL,
            source => CASE WHEN NOT v_same THEN $4 END,
            source_query => CASE WHEN NOT v_same THEN v_query END,
            timestamp_column => CASE WHEN NOT v_same THEN $5 END,
            clear_source => NOT v_same AND $4 IS NULL AND v_query IS NULL);
        RETURN;
    END IF;

    v_keydefs := fstore._key_defs(v_entity);
    v_keylist := fstore._key_list(v_entity);

    -- fillfactor 90 leaves room on each page for the new version of a
    -- changed row, so most updates are HOT (no index entry, less WAL)
    EXECUTE format('CREATE TABLE fstore_online.%I (%s%s, event_ts timestamptz NOT NULL, PRIMARY KEY (%s)) WITH (fillfactor = 90)',
                   v_name, v_keydefs, v_fdefs, v_keylist);
    EXECUTE format('CREATE TRIGGER fstore_dml BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON fstore_online.%I FOR EACH STATEMENT EXECUTE FUNCTION fstore._online_dml()',
                   v_name);
    EXECUTE format('ALTER TABLE fstore_online.%I ENABLE ALWAYS TRIGGER fstore_dml', v_name);

    EXECUTE format('CREATE TABLE fstore_offline.%I (%s, event_ts timestamptz NOT NULL%s, created_at timestamptz NOT NULL DEFAULT now())',
                   v_name, fstore._key_defs(v_entity, true), v_fdefs);
    EXECUTE format('CREATE INDEX ON fstore_offline.%I (%s, event_ts, created_at)',
                   v_name, v_keylist);

    -- the queue: any client inserts or copies events; the stream worker
    -- deletes them as it applies them, so vacuum it often
    EXECUTE format('CREATE TABLE fstore_stream.%I (%s%s, event_ts timestamptz) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000)',
                   v_name, v_keydefs, v_fdefs);
    EXECUTE format('CREATE TRIGGER fstore_enqueued AFTER INSERT ON fstore_stream.%I FOR EACH STATEMENT EXECUTE FUNCTION fstore._stream_enqueued()',
                   v_name);
    EXECUTE format('ALTER TABLE fstore_stream.%I ENABLE ALWAYS TRIGGER fstore_enqueued', v_name);

    INSERT INTO fstore.feature_views (name, entity, source, source_query, timestamp_column, ttl)
    VALUES (v_name, v_entity, v_source, v_query, timestamp_column, ttl)
    RETURNING view_id INTO v_id;
    INSERT INTO fstore.features (view_name, position, name, type)
    SELECT v_name, f.i, f.n, f.t
      FROM unnest(v_fnames, v_ftypes) WITH ORDINALITY AS f(n, t, i);
    INSERT INTO fstore.view_state (view_id) VALUES (v_id);
    PERFORM fstore._init_view(v_id);
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_drop_feature_view(name text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name text := $1;
    v_id   bigint;
    v_users text;
BEGIN
    PERFORM fstore._lock_catalog();
    SELECT v.view_id INTO v_id FROM fstore.feature_views v WHERE v.name = v_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feature view "%" does not exist', v_name
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT string_agg(DISTINCT sf.service, ', ')
      INTO v_users FROM fstore.service_features sf WHERE sf.view_name = v_name;
    IF v_users IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop feature view "%" because other objects depend on it', v_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Feature services using it: %s.', v_users),
                  HINT = 'Drop the feature services first.';
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS fstore_online.%I', v_name);
    EXECUTE format('DROP TABLE IF EXISTS fstore_offline.%I', v_name);
    EXECUTE format('DROP TABLE IF EXISTS fstore_stream.%I', v_name);
    PERFORM fstore._unschedule(v_name);
    -- what is recorded under the name goes with the view
    DELETE FROM fstore.materialization_runs m WHERE m.view_name = v_name;
    DELETE FROM fstore.dead_letters d WHERE d.view_name = v_name;
    DELETE FROM fstore.feature_views v WHERE v.view_id = v_id;
    PERFORM fstore._forget_view(v_id);
END
$fn$;

-- Changes a feature view in place: features added (NULL for the keys
-- already there until written) or dropped, ttl set or cleared, source or
-- timestamp column changed, view renamed.  The online, history and queue
-- tables are altered (keeping every row), the catalogs follow, and the
-- hot cache drops the view's entries at commit; all in the caller's
-- transaction.
CREATE FUNCTION @extschema@.fs_alter_feature_view(
    name text,
    add_features text DEFAULT NULL,
    drop_features text[] DEFAULT NULL,
    ttl interval DEFAULT NULL,
    clear_ttl boolean DEFAULT false,
    rename_to text DEFAULT NULL,
    source regclass DEFAULT NULL,
    source_query text DEFAULT NULL,
    timestamp_column name DEFAULT NULL,
    clear_source boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name    text := $1;
    v_view    record;
    v_owner   oid;
    v_keys    name[];
    v_fnames  name[];
    v_ftypes  text[];
    v_keep_n  name[] := '{}';
    v_keep_t  text[] := '{}';
    v_add_n   name[] := '{}';
    v_add_t   text[] := '{}';
    v_drop    name[] := '{}';
    v_src     text;
    v_srcrel  regclass;
    v_query   text;
    v_ts      name;
    v_new     text;
    v_users   text;
    v_tbl     text;
    v_alter   text;
    v_f       text;
    r record;
    i int;
BEGIN
    PERFORM fstore._lock_catalog();
    SELECT * INTO v_view FROM fstore.feature_views v WHERE v.name = v_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feature view "%" does not exist', v_name
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT c.relowner INTO v_owner FROM pg_catalog.pg_class c
     WHERE c.oid = pg_catalog.to_regclass(format('fstore_online.%I', v_name));
    IF v_owner IS NOT NULL AND NOT pg_catalog.pg_has_role(v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of feature view "%"', v_name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only the owner of a feature view (the owner of its online table) can change it.';
    END IF;

    -- everything is checked before anything changes
    IF clear_ttl AND $4 IS NOT NULL THEN
        RAISE EXCEPTION 'ttl and clear_ttl cannot both be given'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $4 IS NOT NULL AND $4 <= interval '0' THEN
        RAISE EXCEPTION 'ttl of feature view "%" must be positive', v_name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass clear_ttl => true to remove the ttl.';
    END IF;
    IF $7 IS NOT NULL AND $8 IS NOT NULL THEN
        RAISE EXCEPTION 'feature view "%" can have a source or a source query, not both', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF clear_source AND ($7 IS NOT NULL OR $8 IS NOT NULL) THEN
        RAISE EXCEPTION 'clear_source cannot be given with a new source'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT e.key_columns INTO v_keys FROM fstore.entities e WHERE e.name = v_view.entity;
    SELECT coalesce(array_agg(f.name ORDER BY f.position), '{}'),
           coalesce(array_agg(f.type ORDER BY f.position), '{}')
      INTO v_fnames, v_ftypes
      FROM fstore.features f WHERE f.view_name = v_name;
    v_ts := coalesce($9, v_view.timestamp_column);

    -- features dropped
    FOREACH v_f IN ARRAY coalesce(drop_features, '{}') LOOP
        IF v_f IS NULL THEN
            RAISE EXCEPTION 'feature to drop must not be NULL'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF v_f = ANY (v_keys) THEN
            RAISE EXCEPTION 'cannot drop key column "%" of feature view "%"', v_f, v_name
                USING ERRCODE = 'invalid_table_definition',
                      DETAIL = format('Key columns belong to entity "%s" and every view of it has them.', v_view.entity);
        END IF;
        IF v_f IN ('event_ts', 'created_at') OR v_f = v_view.timestamp_column THEN
            RAISE EXCEPTION 'cannot drop timestamp column "%" of feature view "%"', v_f, v_name
                USING ERRCODE = 'invalid_table_definition',
                      DETAIL = 'fstore keeps the event time of every row; a source''s timestamp column is chosen with timestamp_column.';
        END IF;
        IF v_f <> ALL (v_fnames) THEN
            RAISE EXCEPTION 'feature "%" does not exist in feature view "%"', v_f, v_name
                USING ERRCODE = 'undefined_column';
        END IF;
        IF v_f <> ALL (v_drop) THEN
            v_drop := v_drop || v_f::name;
        END IF;
    END LOOP;
    SELECT string_agg(DISTINCT sf.service, ', ') INTO v_users
      FROM fstore.service_features sf
     WHERE sf.view_name = v_name AND sf.feature = ANY (v_drop);
    IF v_users IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop features of feature view "%" because feature services use them', v_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Feature services using them: %s.', v_users),
                  HINT = 'Drop or redefine those feature services first.';
    END IF;
    FOR i IN 1 .. cardinality(v_fnames) LOOP
        IF v_fnames[i] <> ALL (v_drop) THEN
            v_keep_n := v_keep_n || v_fnames[i];
            v_keep_t := v_keep_t || v_ftypes[i];
        END IF;
    END LOOP;

    -- features added
    IF add_features IS NOT NULL THEN
        FOR r IN SELECT * FROM fstore._parse_columns(add_features) LOOP
            IF r.colname = ANY (v_keys) THEN
                RAISE EXCEPTION 'feature "%" has the name of a key column of entity "%"', r.colname, v_view.entity
                    USING ERRCODE = 'duplicate_column';
            END IF;
            IF r.colname IN ('event_ts', 'created_at') THEN
                RAISE EXCEPTION 'feature name "%" is reserved', r.colname
                    USING ERRCODE = 'reserved_name',
                          DETAIL = 'fstore uses event_ts and created_at for its own columns.';
            END IF;
            IF r.colname = ANY (v_keep_n) THEN
                RAISE EXCEPTION 'feature "%" already exists in feature view "%"', r.colname, v_name
                    USING ERRCODE = 'duplicate_column';
            END IF;
            IF r.colname = ANY (v_add_n) THEN
                RAISE EXCEPTION 'feature "%" is listed more than once', r.colname
                    USING ERRCODE = 'duplicate_column';
            END IF;
            v_add_n := v_add_n || r.colname;
            v_add_t := v_add_t || r.typesql;
        END LOOP;
    END IF;
    IF cardinality(v_keep_n) + cardinality(v_add_n) = 0 THEN
        RAISE EXCEPTION 'feature view "%" would have no features', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the source after the change holds the keys, the timestamp column
    -- and every feature, and its new owner may read it
    IF clear_source THEN
        v_src := NULL; v_query := NULL;
    ELSIF $7 IS NOT NULL THEN
        SELECT format('%I.%I', n.nspname, c.relname) INTO v_src
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = $7;
        v_query := NULL;
    ELSIF $8 IS NOT NULL THEN
        v_src := NULL;
        v_query := fstore._check_select($8);
    ELSE
        v_src := v_view.source;
        v_query := v_view.source_query;
    END IF;
    IF v_src IS NOT NULL AND ($7 IS NOT NULL OR $9 IS NOT NULL OR cardinality(v_add_n) > 0) THEN
        v_srcrel := pg_catalog.to_regclass(v_src);
        IF v_srcrel IS NULL THEN
            RAISE EXCEPTION 'source % of feature view "%" does not exist', v_src, v_name
                USING ERRCODE = 'undefined_table';
        END IF;
        PERFORM fstore._check_source_columns(v_srcrel, NULL, v_src,
            v_keys || v_keep_n || v_add_n || v_ts, 'feature',
            'A feature view''s source must be readable by the role changing it; %I is not.');
    END IF;
    IF v_query IS NOT NULL AND ($8 IS NOT NULL OR $9 IS NOT NULL OR cardinality(v_add_n) > 0) THEN
        PERFORM fstore._check_source_columns(NULL, v_query, NULL,
            v_keys || v_keep_n || v_add_n || v_ts, 'feature', NULL);
    END IF;

    -- the new name
    IF rename_to IS NOT NULL AND rename_to <> v_name THEN
        v_new := fstore._check_name(rename_to, 'feature view');
        IF EXISTS (SELECT 1 FROM fstore.feature_views v WHERE v.name = v_new) THEN
            RAISE EXCEPTION 'feature view "%" already exists', v_new
                USING ERRCODE = 'duplicate_table';
        END IF;
        IF EXISTS (SELECT 1 FROM fstore.feature_services s WHERE s.name = v_new) THEN
            RAISE EXCEPTION 'a feature service named "%" already exists', v_new
                USING ERRCODE = 'duplicate_table',
                      DETAIL = 'Feature views and feature services share the fstore_online namespace.';
        END IF;
        IF EXISTS (SELECT 1 FROM fstore.aggregation_views a WHERE a.name = v_new) THEN
            RAISE EXCEPTION 'an aggregation view named "%" already exists', v_new
                USING ERRCODE = 'duplicate_table';
        END IF;
        FOREACH v_tbl IN ARRAY ARRAY['fstore_online', 'fstore_offline', 'fstore_stream'] LOOP
            IF pg_catalog.to_regclass(format('%I.%I', v_tbl, v_new)) IS NOT NULL
               OR pg_catalog.to_regtype(format('%I.%I', v_tbl, v_new)) IS NOT NULL THEN
                RAISE EXCEPTION 'relation "%.%" already exists', v_tbl, v_new
                    USING ERRCODE = 'duplicate_table';
            END IF;
        END LOOP;
    END IF;

    -- the tables: every row stays; added columns are NULL.  Locked in the
    -- order a stream batch takes them (queue, online, history), so that a
    -- batch in progress is waited for, not deadlocked with.
    FOREACH v_tbl IN ARRAY ARRAY['fstore_stream', 'fstore_online', 'fstore_offline'] LOOP
        CONTINUE WHEN pg_catalog.to_regclass(format('%I.%I', v_tbl, v_name)) IS NULL;
        EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', v_tbl, v_name);
    END LOOP;
    v_alter := '';
    FOREACH v_f IN ARRAY v_drop LOOP
        v_alter := v_alter || format(', DROP COLUMN IF EXISTS %I', v_f);
    END LOOP;
    FOR i IN 1 .. cardinality(v_add_n) LOOP
        v_alter := v_alter || format(', ADD COLUMN %I %s', v_add_n[i], v_add_t[i]);
    END LOOP;
    FOREACH v_tbl IN ARRAY ARRAY['fstore_online', 'fstore_offline', 'fstore_stream'] LOOP
        CONTINUE WHEN pg_catalog.to_regclass(format('%I.%I', v_tbl, v_name)) IS NULL;
        IF v_alter <> '' THEN
            EXECUTE format('ALTER TABLE %I.%I %s', v_tbl, v_name, substr(v_alter, 3));
        END IF;
        IF v_new IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I.%I RENAME TO %I', v_tbl, v_name, v_new);
        END IF;
    END LOOP;
    IF v_new IS NOT NULL AND octet_length(v_name) <= 58 AND octet_length(v_new) <= 58
       AND pg_catalog.to_regclass(format('fstore_online.%I', v_name || '_pkey')) IS NOT NULL THEN
        EXECUTE format('ALTER INDEX fstore_online.%I RENAME TO %I', v_name || '_pkey', v_new || '_pkey');
    END IF;

    -- the catalogs (a new name reaches features and services by cascade)
    IF cardinality(v_drop) > 0 OR cardinality(v_add_n) > 0 THEN
        DELETE FROM fstore.features f WHERE f.view_name = v_name;
        INSERT INTO fstore.features (view_name, position, name, type)
        SELECT v_name, f.i, f.n, f.t
          FROM unnest(v_keep_n || v_add_n, v_keep_t || v_add_t) WITH ORDINALITY AS f(n, t, i);
    END IF;
    UPDATE fstore.feature_views v
       SET ttl = CASE WHEN clear_ttl THEN NULL ELSE coalesce($4, v.ttl) END,
           source = v_src,
           source_query = v_query,
           timestamp_column = v_ts,
           name = coalesce(v_new, v.name)
     WHERE v.view_id = v_view.view_id;
    IF v_new IS NOT NULL THEN
        UPDATE fstore.materialization_runs m SET view_name = v_new WHERE m.view_name = v_name;
        UPDATE fstore.dead_letters d SET view_name = v_new WHERE d.view_name = v_name;
        PERFORM fstore._rename_job(v_name, v_new);
    END IF;

    -- readers and writers: the writers' lock, and a new cache generation
    PERFORM fstore._view_changed(coalesce(v_new, v_name));
END
$fn$;

-- Resolves feature references to (view, feature, output name), in order:
--   view.feature, view.feature AS alias, view.* (every feature of the view),
--   service or service.* (every feature of the service, as it names them).
CREATE OR REPLACE FUNCTION fstore._resolve_features(p_refs text[],
    OUT pos int, OUT view_name text, OUT entity text, OUT feature name, OUT output_name name)
RETURNS SETOF record LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_ref     text;
    v_parts   text[];
    v_m       text[];
    v_alias   text;
    v_star    bool;
    n         int := 0;
    r         record;
BEGIN
    IF p_refs IS NULL OR cardinality(p_refs) = 0 THEN
        RETURN;
    END IF;
    FOREACH v_ref IN ARRAY p_refs LOOP
        IF v_ref IS NULL THEN
            RAISE EXCEPTION 'feature reference must not be NULL'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        v_m := regexp_match(v_ref, '^\s*(.+?)(?:\s+[aA][sS]\s+("(?:[^"]|"")+"|\S+))?\s*$');
        v_star := v_m[1] ~ '\.\s*\*$';
        BEGIN
            IF v_star THEN
                v_parts := parse_ident(regexp_replace(v_m[1], '\.\s*\*$', ''));
            ELSE
                v_parts := parse_ident(v_m[1]);
            END IF;
            v_alias := CASE WHEN v_m[2] IS NULL THEN NULL ELSE (parse_ident(v_m[2]))[1] END;
            IF v_m[2] IS NOT NULL AND cardinality(parse_ident(v_m[2])) <> 1 THEN
                RAISE EXCEPTION USING ERRCODE = 'invalid_name';
            END IF;
        EXCEPTION WHEN OTHERS THEN
            v_parts := NULL;
        END;

        -- a service, bare or with .*
        IF v_parts IS NOT NULL AND cardinality(v_parts) = 1 AND v_alias IS NULL
           AND EXISTS (SELECT 1 FROM fstore.feature_services fs WHERE fs.name = v_parts[1]) THEN
            FOR r IN
                SELECT sf.view_name AS v, fv.entity AS e, sf.feature AS f, sf.output_name AS o
                  FROM fstore.service_features sf
                  JOIN fstore.feature_views fv ON fv.name = sf.view_name
                 WHERE sf.service = v_parts[1] ORDER BY sf.position
            LOOP
                n := n + 1;
                pos := n; view_name := r.v; entity := r.e; feature := r.f; output_name := r.o;
                RETURN NEXT;
            END LOOP;
            CONTINUE;
        END IF;

        IF v_parts IS NULL OR cardinality(v_parts) <> (CASE WHEN v_star THEN 1 ELSE 2 END) THEN
            RAISE EXCEPTION 'invalid feature reference "%"', v_ref
                USING ERRCODE = 'invalid_name',
                      HINT = 'Write view.feature, view.feature AS alias, view.*, or the name of a feature service.';
        END IF;
        SELECT v.entity INTO entity FROM fstore.feature_views v WHERE v.name = v_parts[1];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'feature view "%" does not exist', v_parts[1]
                USING ERRCODE = 'undefined_object';
        END IF;
        IF v_star AND v_alias IS NOT NULL THEN
            RAISE EXCEPTION 'invalid feature reference "%"', v_ref
                USING ERRCODE = 'invalid_name',
                      DETAIL = 'view.* cannot have an alias.';
        END IF;
        FOR r IN
            SELECT f.name FROM fstore.features f
             WHERE f.view_name = v_parts[1] AND (v_star OR f.name = v_parts[2])
             ORDER BY f.position
        LOOP
            n := n + 1;
            pos := n; view_name := v_parts[1]; feature := r.name;
            output_name := coalesce(v_alias, r.name)::name;
            RETURN NEXT;
        END LOOP;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'feature "%" does not exist in feature view "%"', v_parts[2], v_parts[1]
                USING ERRCODE = 'undefined_column';
        END IF;
    END LOOP;
END
$fn$;

-- Checks, types and writes out (qualified, now() as fstore_now) the derived
-- features of a service over its columns (src/online/service.c).
CREATE FUNCTION fstore._derived_analyze(cols name[], types text[], exprs text[],
    OUT pos int, OUT name name, OUT typesql text, OUT expr text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fs_derived_analyze'
LANGUAGE C STRICT STABLE;

-- Makes every backend plan statements calling these functions again.
CREATE FUNCTION fstore._invalidate_reads(fns regprocedure[]) RETURNS void
AS 'MODULE_PATHNAME', 'fs_invalidate_reads'
LANGUAGE C STRICT VOLATILE;

DROP FUNCTION @extschema@.fs_create_feature_service(text, text[]);
CREATE FUNCTION @extschema@.fs_create_feature_service(name text, features text[],
    derived text[] DEFAULT NULL, or_replace bool DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    -- the request type is <name>_request: 8 bytes of the 63 go to it
    v_name    text := fstore._check_name($1, 'feature service', 55);
    v_entity  text;
    v_multi   bool := false;
    v_rcols   name[] := '{}';   -- request columns: union of the entities' keys
    v_rtypes  text[] := '{}';
    v_rviews  text[] := '{}';   -- a view that brought each request column
    v_out     name[] := '{}';
    v_views   text[] := '{}';
    v_feats   name[] := '{}';
    v_otypes  text[] := '{}';
    v_isagg   bool[] := '{}';   -- features of aggregation views
    v_dnames  name[];
    v_dtypes  text[];
    v_dexprs  text[];
    v_cols    name[];
    v_types   text[];
    v_old     record;
    v_oldcols name[];
    v_oldtypes text[];
    v_oldrcols name[];
    v_oldrtypes text[];
    v_req     regtype;
    v_pos     int;
    r record;
    r2 record;
BEGIN
    PERFORM fstore._lock_catalog();
    IF or_replace IS NULL THEN
        RAISE EXCEPTION 'or_replace must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT s.* INTO v_old FROM fstore.feature_services s WHERE s.name = v_name;
    IF FOUND AND NOT or_replace THEN
        RAISE EXCEPTION 'feature service "%" already exists', v_name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Pass or_replace => true to change it in place.';
    END IF;
    IF EXISTS (SELECT 1 FROM fstore.feature_views v WHERE v.name = v_name) THEN
        RAISE EXCEPTION 'a feature view named "%" already exists', v_name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'Feature views and feature services share the fstore_online namespace.';
    END IF;
    IF EXISTS (SELECT 1 FROM fstore.aggregation_views a WHERE a.name = v_name) THEN
        RAISE EXCEPTION 'an aggregation view named "%" already exists', v_name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'Aggregation views and feature services share the fstore_online namespace.';
    END IF;
    IF features IS NULL OR cardinality(features) = 0 THEN
        RAISE EXCEPTION 'feature service "%" needs at least one feature', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- features of feature views and of aggregation views (fstore._agg_resolve_all)
    FOR r IN SELECT f.* FROM fstore._agg_resolve_all(features) f ORDER BY f.pos LOOP
        IF v_entity IS NULL THEN
            v_entity := r.entity;
        ELSIF v_entity <> r.entity THEN
            v_multi := true;
        END IF;
        -- the view's key columns join the request columns; a column shared
        -- by name must have one type
        FOR r2 IN SELECT k.c, k.t FROM fstore.entities e,
                         unnest(e.key_columns, e.key_types) WITH ORDINALITY AS k(c, t, i)
                   WHERE e.name = r.entity ORDER BY k.i LOOP
            v_pos := array_position(v_rcols, r2.c);
            IF v_pos IS NULL THEN
                v_rcols := v_rcols || r2.c;
                v_rtypes := v_rtypes || r2.t;
                v_rviews := v_rviews || r.view_name;
            ELSIF v_rtypes[v_pos] <> r2.t THEN
                RAISE EXCEPTION 'feature views "%" and "%" of feature service "%" disagree on the type of key column "%"',
                                v_rviews[v_pos], r.view_name, v_name, r2.c
                    USING ERRCODE = 'datatype_mismatch',
                          DETAIL = format('Feature view "%s" has %s %s, feature view "%s" has %s %s.',
                                          v_rviews[v_pos], quote_ident(r2.c), v_rtypes[v_pos],
                                          r.view_name, quote_ident(r2.c), r2.t),
                          HINT = 'A request column shared by several entities must have one type in all of them.';
            END IF;
        END LOOP;
        v_views := v_views || r.view_name;
        v_feats := v_feats || r.feature;
        v_out := v_out || r.output_name;
        v_otypes := v_otypes || r.type;
        v_isagg := v_isagg || r.is_agg;
    END LOOP;

    FOR i IN 1 .. cardinality(v_out) LOOP
        IF v_out[i] = ANY (v_out[1:i - 1]) OR v_out[i] = ANY (v_rcols) THEN
            RAISE EXCEPTION 'feature service "%" has two columns named "%"', v_name, v_out[i]
                USING ERRCODE = 'duplicate_column',
                      HINT = 'Rename one of them with AS.';
        END IF;
    END LOOP;
    v_cols := v_rcols || v_out;
    v_types := v_rtypes || v_otypes;

    -- derived features: checked, typed and written out qualified (C)
    IF derived IS NOT NULL AND cardinality(derived) > 0 THEN
        SELECT array_agg(d.name ORDER BY d.pos), array_agg(d.typesql ORDER BY d.pos),
               array_agg(d.expr ORDER BY d.pos)
          INTO v_dnames, v_dtypes, v_dexprs
          FROM fstore._derived_analyze(v_cols, v_types, derived) d;
        FOR i IN 1 .. cardinality(v_dnames) LOOP
            IF v_dnames[i] = ANY (v_cols) OR v_dnames[i] = ANY (v_dnames[1:i - 1]) THEN
                RAISE EXCEPTION 'feature service "%" has two columns named "%"', v_name, v_dnames[i]
                    USING ERRCODE = 'duplicate_column',
                          HINT = 'Rename one of them with AS.';
            END IF;
        END LOOP;
        v_cols := v_cols || v_dnames;
        v_types := v_types || v_dtypes;
    END IF;

    IF v_old.name IS NOT NULL THEN
        -- or_replace: the same definition changes nothing; another one with
        -- the same row and request types is applied in place (the types,
        -- and so clients' prepared statements, stay); any other fails
        IF v_old.derived IS NOT DISTINCT FROM v_dnames
           AND v_old.derived_types IS NOT DISTINCT FROM v_dtypes
           AND v_old.derived_exprs IS NOT DISTINCT FROM v_dexprs
           AND (SELECT array_agg(ARRAY[x.v, x.f, x.o] ORDER BY x.p)
                  FROM (SELECT sf.position AS p, sf.view_name AS v, sf.feature::text AS f, sf.output_name::text AS o
                          FROM fstore.service_features sf WHERE sf.service = v_name
                        UNION ALL
                        SELECT sa.position, sa.view_name, sa.feature::text, sa.output_name::text
                          FROM fstore.service_aggregations sa WHERE sa.service = v_name) x)
               IS NOT DISTINCT FROM
               (SELECT array_agg(ARRAY[s.v, s.f::text, s.o::text] ORDER BY s.i)
                  FROM unnest(v_views, v_feats, v_out) WITH ORDINALITY AS s(v, f, o, i)) THEN
            RETURN;
        END IF;
        SELECT array_agg(a.attname ORDER BY a.attnum),
               array_agg(fstore._type_sql(a.atttypid, a.atttypmod) ORDER BY a.attnum)
          INTO v_oldcols, v_oldtypes
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = (SELECT t.typrelid FROM pg_catalog.pg_type t
                              WHERE t.oid = format('fstore_online.%I', v_name)::regtype)
           AND a.attnum > 0 AND NOT a.attisdropped;
        SELECT array_agg(a.attname ORDER BY a.attnum),
               array_agg(fstore._type_sql(a.atttypid, a.atttypmod) ORDER BY a.attnum)
          INTO v_oldrcols, v_oldrtypes
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = (SELECT t.typrelid FROM pg_catalog.pg_type t WHERE t.oid = v_old.request_type)
           AND a.attnum > 0 AND NOT a.attisdropped;
        IF v_oldcols IS DISTINCT FROM v_cols OR v_oldtypes IS DISTINCT FROM v_types
           OR v_oldrcols IS DISTINCT FROM v_rcols OR v_oldrtypes IS DISTINCT FROM v_rtypes THEN
            RAISE EXCEPTION 'cannot replace feature service "%": its row type would change', v_name
                USING ERRCODE = 'invalid_object_definition',
                      DETAIL = format('The row type has columns (%s); the new definition has (%s).',
                                      (SELECT string_agg(format('%I %s', c, t), ', ' ORDER BY n)
                                         FROM unnest(v_oldcols, v_oldtypes) WITH ORDINALITY AS x(c, t, n)),
                                      (SELECT string_agg(format('%I %s', c, t), ', ' ORDER BY n)
                                         FROM unnest(v_cols, v_types) WITH ORDINALITY AS x(c, t, n))),
                      HINT = 'Replacing keeps the service''s columns, their names, types and order. To change them, drop the feature service and create it again; clients then re-prepare the statements that use it.';
        END IF;
        DELETE FROM fstore.service_features sf WHERE sf.service = v_name;
        DELETE FROM fstore.service_aggregations sa WHERE sa.service = v_name;
        UPDATE fstore.feature_services s
           SET entity = CASE WHEN v_multi THEN NULL ELSE v_entity END,
               derived = v_dnames, derived_types = v_dtypes, derived_exprs = v_dexprs
         WHERE s.name = v_name;
    ELSE
        -- a request type left by a dropped service of this name is taken
        -- over, altered in place to the new columns if they differ: its OID
        -- stays, so statements prepared with it as a parameter's type keep
        -- binding (and get a clear error if the columns changed)
        v_req := pg_catalog.to_regtype(format('fstore.%I', v_name || '_request'));
        IF v_req IS NOT NULL AND NOT pg_catalog.pg_has_role(
               (SELECT t.typowner FROM pg_catalog.pg_type t WHERE t.oid = v_req), 'USAGE') THEN
            RAISE EXCEPTION 'request type % belongs to another role', v_req
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A dropped feature service of this name left it.',
                      HINT = format('Have its owner drop it (DROP TYPE %s), or choose another name.', v_req);
        END IF;
        IF v_req IS NOT NULL THEN
            SELECT array_agg(a.attname ORDER BY a.attnum),
                   array_agg(fstore._type_sql(a.atttypid, a.atttypmod) ORDER BY a.attnum)
              INTO v_oldrcols, v_oldrtypes
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = (SELECT t.typrelid FROM pg_catalog.pg_type t WHERE t.oid = v_req)
               AND a.attnum > 0 AND NOT a.attisdropped;
            IF v_oldrcols IS DISTINCT FROM v_rcols OR v_oldrtypes IS DISTINCT FROM v_rtypes THEN
                EXECUTE format('ALTER TYPE fstore.%I %s', v_name || '_request',
                    (SELECT string_agg(x, ', ') FROM (
                        SELECT format('DROP ATTRIBUTE %I', c) AS x FROM unnest(v_oldrcols) c
                        UNION ALL
                        SELECT format('ADD ATTRIBUTE %I %s', c, t)
                          FROM unnest(v_rcols, v_rtypes) WITH ORDINALITY AS y(c, t, n)) z));
            END IF;
        ELSE
            EXECUTE format('CREATE TYPE fstore.%I AS (%s)', v_name || '_request',
                           (SELECT string_agg(format('%I %s', c, t), ', ' ORDER BY n)
                              FROM unnest(v_rcols, v_rtypes) WITH ORDINALITY AS x(c, t, n)));
        END IF;
        EXECUTE format('CREATE TYPE fstore_online.%I AS (%s)', v_name,
                       (SELECT string_agg(format('%I %s', c, t), ', ' ORDER BY n)
                          FROM unnest(v_cols, v_types) WITH ORDINALITY AS x(c, t, n)));
        INSERT INTO fstore.feature_services (name, entity, request_type, derived, derived_types, derived_exprs)
        VALUES (v_name, CASE WHEN v_multi THEN NULL ELSE v_entity END,
                format('fstore.%I', v_name || '_request')::regtype,
                v_dnames, v_dtypes, v_dexprs);
        -- statements prepared against an earlier service of this name
        -- are planned again (with the new row type) on their next use
        PERFORM fstore._invalidate_reads(ARRAY[
            '@extschema@.fs_get_many(anyelement, "any")'::pg_catalog.regprocedure,
            '@extschema@.fs_get_many_packed(anyelement, "any")'::pg_catalog.regprocedure,
            '@extschema@.fs_get_many_status(anyelement, "any")'::pg_catalog.regprocedure]);
    END IF;
    INSERT INTO fstore.service_features (service, position, view_name, feature, output_name)
    SELECT v_name, s.i, s.v, s.f, s.o
      FROM unnest(v_views, v_feats, v_out, v_isagg) WITH ORDINALITY AS s(v, f, o, g, i)
     WHERE NOT s.g;
    INSERT INTO fstore.service_aggregations (service, position, view_name, feature, output_name)
    SELECT v_name, s.i, s.v, s.f, s.o
      FROM unnest(v_views, v_feats, v_out, v_isagg) WITH ORDINALITY AS s(v, f, o, g, i)
     WHERE s.g;
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_drop_feature_service(name text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name text := $1;
BEGIN
    PERFORM fstore._lock_catalog();
    IF v_name IS NULL OR NOT EXISTS (SELECT 1 FROM fstore.feature_services s WHERE s.name = v_name) THEN
        RAISE EXCEPTION 'feature service "%" does not exist', v_name
            USING ERRCODE = 'undefined_object';
    END IF;
    DELETE FROM fstore.feature_services s WHERE s.name = v_name;
    EXECUTE format('DROP TYPE IF EXISTS fstore_online.%I', v_name);
    -- the request type stays: statements prepared with it as a parameter's
    -- type keep binding; a service created again under this name takes it
    -- over (fs_create_feature_service), and DROP TYPE removes it for good
    PERFORM fstore._invalidate_reads(ARRAY[
            '@extschema@.fs_get_many(anyelement, "any")'::pg_catalog.regprocedure,
            '@extschema@.fs_get_many_packed(anyelement, "any")'::pg_catalog.regprocedure,
            '@extschema@.fs_get_many_status(anyelement, "any")'::pg_catalog.regprocedure]);
END
$fn$;

-- Per request and view of a service: present, expired, absent or null key,
-- with the stored row's event_ts.
CREATE FUNCTION @extschema@.fs_get_many_status(row_type anyelement, keys "any",
    OUT request int, OUT view_name text, OUT status text, OUT event_ts timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fs_get_many_status'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1000;

-- Services of 0.1 get their request type (the entity's key columns).
DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT s.name, s.entity FROM fstore.feature_services s ORDER BY s.name LOOP
        IF octet_length(r.name) > 55 THEN
            RAISE NOTICE 'feature service "%" has a name too long for a request type', r.name
                USING DETAIL = 'It keeps taking its entity''s keys; create it again under a shorter name to pass requests.';
            CONTINUE;
        END IF;
        EXECUTE format('CREATE TYPE fstore.%I AS (%s)', r.name || '_request', fstore._key_defs(r.entity));
        -- made by the service, not the extension (as fs_create_feature_service does)
        EXECUTE format('ALTER EXTENSION fstore DROP TYPE fstore.%I', r.name || '_request');
        EXECUTE format('ALTER TYPE fstore.%I OWNER TO %I', r.name || '_request',
                       (SELECT pg_catalog.pg_get_userbyid(t.typowner) FROM pg_catalog.pg_type t
                         WHERE t.oid = format('fstore_online.%I', r.name)::pg_catalog.regtype));
        UPDATE fstore.feature_services s
           SET request_type = format('fstore.%I', r.name || '_request')::pg_catalog.regtype
         WHERE s.name = r.name;
    END LOOP;
END
$do$;

CREATE OR REPLACE FUNCTION fstore._job_name(p_view text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $fn$ SELECT 'fstore_materialize_' || p_view $fn$;

CREATE OR REPLACE FUNCTION fstore._require_pg_cron() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'fs_schedule_materialize creates pg_cron jobs.',
                  HINT = 'Install the postgresql-15-cron package, add pg_cron to shared_preload_libraries, set cron.database_name to this database, restart, and run CREATE EXTENSION pg_cron.';
    END IF;
END
$fn$;

-- Removes a view's pg_cron job, if pg_cron and the job exist.
CREATE OR REPLACE FUNCTION fstore._unschedule(p_view text) RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_job   bigint;
    v_found bool := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN false;
    END IF;
    IF NOT pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
        RAISE NOTICE 'the pg_cron job of feature view "%" was not looked for', p_view
            USING DETAIL = 'This role has no USAGE privilege on schema cron.',
                  HINT = format('If job %L exists, its owner can remove it with cron.unschedule.',
                                fstore._job_name(p_view));
        RETURN false;
    END IF;
    -- by id, which works for the job's owner and for superusers alike
    FOR v_job IN EXECUTE 'SELECT jobid FROM cron.job WHERE jobname = $1::name'
                 USING fstore._job_name(p_view) LOOP
        EXECUTE 'SELECT cron.unschedule($1::bigint)' USING v_job;
        v_found := true;
    END LOOP;
    RETURN v_found;
END
$fn$;

-- The command of a view's pg_cron job: fs_materialize with exactly typed
-- arguments, so that only fstore's own function matches.
CREATE FUNCTION fstore._job_command(p_view text, p_lookback interval) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET IntervalStyle = postgres AS $fn$
    SELECT format('SELECT * FROM %I.fs_materialize(%L::pg_catalog.text, NULL::pg_catalog.timestamptz, NULL::pg_catalog.timestamptz, %s::pg_catalog.interval)',
                  (SELECT n.nspname FROM pg_catalog.pg_extension e
                     JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'fstore'),
                  p_view, coalesce(quote_literal(p_lookback::text), 'NULL'));
$fn$;

-- Moves the pg_cron job of a renamed view to the new name (the job's
-- schedule and lookback kept; it then belongs to the current role).
CREATE FUNCTION fstore._rename_job(p_old text, p_new text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    r record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
       OR NOT pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
        RETURN;
    END IF;
    FOR r IN EXECUTE 'SELECT jobid, schedule, command FROM cron.job WHERE jobname = $1::name'
             USING fstore._job_name(p_old) LOOP
        IF pg_catalog.octet_length(fstore._job_name(p_new)) > 63 THEN
            RAISE EXCEPTION 'feature view name "%" is too long for a pg_cron job name', p_new
                USING ERRCODE = 'name_too_long',
                      DETAIL = format('Feature view "%s" is scheduled; its job would be named %L, over the 63 bytes of a name.', p_old, fstore._job_name(p_new)),
                      HINT = 'Scheduled views have names of at most 44 bytes.';
        END IF;
        EXECUTE 'SELECT cron.unschedule($1::bigint)' USING r.jobid;
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
          USING fstore._job_name(p_new), r.schedule,
                replace(r.command, format('%L::pg_catalog.text', p_old), format('%L::pg_catalog.text', p_new));
    END LOOP;
END
$fn$;

CREATE FUNCTION @extschema@.fs_schedule_materialize(view text, schedule text,
    lookback interval DEFAULT NULL, or_replace boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name text := $1;
    v_job  bigint;
    v_cmd  text;
    r      record;
BEGIN
    IF v_name IS NULL OR NOT EXISTS (SELECT 1 FROM fstore.feature_views v WHERE v.name = v_name) THEN
        RAISE EXCEPTION 'feature view "%" does not exist', v_name
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM fstore.feature_views v
                    WHERE v.name = v_name AND (v.source IS NOT NULL OR v.source_query IS NOT NULL)) THEN
        RAISE EXCEPTION 'feature view "%" has no source', v_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only views with a source can be materialized.';
    END IF;
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF lookback IS NOT NULL AND lookback < interval '0' THEN
        RAISE EXCEPTION 'lookback must be a finite, non-negative interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.octet_length(fstore._job_name(v_name)) > 63 THEN
        RAISE EXCEPTION 'feature view name "%" is too long for a pg_cron job name', v_name
            USING ERRCODE = 'name_too_long',
                  DETAIL = format('The job would be named %L, over the 63 bytes of a name.', fstore._job_name(v_name)),
                  HINT = 'Schedule views whose names have at most 44 bytes.';
    END IF;
    PERFORM fstore._require_pg_cron();
    v_cmd := fstore._job_command(v_name, lookback);
    -- the job this role has for the view: the same one is a no-op, another
    -- is replaced only when asked to
    FOR r IN EXECUTE 'SELECT jobid, schedule, command FROM cron.job WHERE jobname = $1::name AND username = current_user'
             USING fstore._job_name(v_name) LOOP
        IF r.schedule = schedule AND r.command = v_cmd THEN
            RETURN r.jobid;
        END IF;
        IF NOT coalesce(or_replace, false) THEN
            RAISE EXCEPTION 'feature view "%" is already scheduled', v_name
                USING ERRCODE = 'duplicate_object',
                      DETAIL = format('Job %s runs %L at %L.', r.jobid, r.command, r.schedule),
                      HINT = 'Pass or_replace => true to change the schedule.';
        END IF;
    END LOOP;
    EXECUTE 'SELECT cron.schedule($1, $2, $3)'
       INTO v_job
      USING fstore._job_name(v_name), schedule, v_cmd;
    RETURN v_job;
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_unschedule_materialize(view text)
RETURNS bool LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM fstore._require_pg_cron();
    IF $1 IS NULL OR NOT fstore._unschedule($1) THEN
        RAISE EXCEPTION 'feature view "%" has no materialization schedule', $1
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN true;
END
$fn$;

-- The planner's estimate of a query's rows.
CREATE OR REPLACE FUNCTION fstore._estimate_rows(p_query text) RETURNS float8
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_query INTO v_plan;
    RETURN (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END
$fn$;

-- A training set's query with the derived features of the services it
-- names: computed from each row's columns, with the row's event_ts as
-- now(), as fs_get_many computes them at the time of a request.
CREATE FUNCTION fstore._with_derived(p_features text[], p_sql text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_ref    text;
    v_svc    text;
    v_n      int := 0;
    v_select text := '';
    v_from   text := '';
    v_base   text;
    v_owner  oid;
    r record;
BEGIN
    FOREACH v_ref IN ARRAY p_features LOOP
        v_svc := regexp_replace(btrim(v_ref), '\.\s*\*$', '');
        SELECT s.* INTO r FROM fstore.feature_services s
         WHERE s.name = v_svc AND cardinality(s.derived) > 0;
        IF NOT FOUND THEN
            CONTINUE;
        END IF;
        SELECT t.typowner INTO v_owner FROM pg_catalog.pg_type t
         WHERE t.oid = format('fstore_online.%I', v_svc)::pg_catalog.regtype;
        -- the expressions run with the rights of whoever runs the query
        IF NOT pg_catalog.pg_has_role(v_owner, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied for the derived features of feature service "%"', v_svc
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A training set computes derived features with the rights of the role that builds it, which must have the privileges of the service''s owner.',
                      HINT = 'Have the service''s owner build the training set, or list the features of the service''s views instead of the service.';
        END IF;
        v_n := v_n + 1;
        SELECT string_agg(format('fs_b.%I AS %I', a.attname, a.attname), ', ' ORDER BY a.attnum)
          INTO v_base
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = (SELECT t.typrelid FROM pg_catalog.pg_type t
                              WHERE t.oid = format('fstore_online.%I', v_svc)::pg_catalog.regtype)
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> ALL (r.derived);
        v_select := v_select || format(', fs_d%s.*', v_n);
        v_from := v_from || format(E'\n  CROSS JOIN LATERAL (SELECT %s\n      FROM (SELECT %s, fs_b.event_ts::pg_catalog.timestamptz AS fstore_now) fstore_row) fs_d%s',
            (SELECT string_agg(format('%s AS %I', d.e, d.n), ', ' ORDER BY d.i)
               FROM unnest(r.derived_exprs, r.derived) WITH ORDINALITY AS d(e, n, i)),
            v_base, v_n);
    END LOOP;
    IF v_n = 0 THEN
        RETURN p_sql;
    END IF;
    RETURN format(E'SELECT fs_b.*%s\n  FROM (\n%s\n) fs_b%s', v_select, p_sql, v_from);
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_training_set_query(entity_query text, features text[],
    created_before timestamptz DEFAULT NULL, strategy text DEFAULT 'auto')
RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- literals in the SQL (created_before, ttls) read the same in any session
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres'
AS $fn$
DECLARE
    v_query    text;
    v_cols     name[];
    v_types    text[];
    v_views    text[] := '{}';
    v_outs     name[] := '{}';
    v_otypes   text[] := '{}';
    v_est      float8;
    v_hist     float8;
    v_strategy text := strategy;
    v_keys     name[];
    v_ktypes   text[];
    v_ttl      interval;
    v_select   text := '';
    v_from     text := '';
    v_fcols    text;
    v_pos      int;
    r          record;
    rf         record;
    i          int;
BEGIN
    IF strategy IS NULL OR strategy NOT IN ('auto', 'lateral', 'hash') THEN
        RAISE EXCEPTION 'invalid strategy "%"', strategy
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use auto, lateral or hash.';
    END IF;
    -- features of aggregation views: built from their tiles (aggregation views section)
    IF fstore._agg_has_features(features) THEN
        RETURN fstore._agg_training_set_query(entity_query, features, created_before, strategy);
    END IF;
    IF entity_query IS NULL THEN
        RAISE EXCEPTION 'entity query must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_query := fstore._check_select(entity_query);
    SELECT array_agg(c.colname ORDER BY c.n), array_agg(c.typesql ORDER BY c.n)
      INTO v_cols, v_types
      FROM fstore._query_columns(v_query) WITH ORDINALITY AS c(colname, typesql, n);
    IF v_cols IS NULL OR NOT ('event_ts' = ANY (v_cols)) THEN
        RAISE EXCEPTION 'entity query has no column "event_ts"'
            USING ERRCODE = 'undefined_column',
                  HINT = 'Select the time of each row as event_ts.';
    END IF;
    IF (SELECT count(*) <> count(DISTINCT c) FROM unnest(v_cols) c) THEN
        RAISE EXCEPTION 'entity query has two columns named "%"',
              (SELECT c FROM unnest(v_cols) c GROUP BY c HAVING count(*) > 1 ORDER BY c LIMIT 1)
            USING ERRCODE = 'duplicate_column',
                  HINT = 'Rename one of them with AS.';
    END IF;
    IF v_types[array_position(v_cols, 'event_ts')]
       NOT IN ('timestamp with time zone', 'timestamp without time zone', 'date') THEN
        RAISE EXCEPTION 'column "event_ts" of the entity query has type %', v_types[array_position(v_cols, 'event_ts')]
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'event_ts must be a timestamp with time zone (or a timestamp or date).';
    END IF;
    IF features IS NULL OR cardinality(features) = 0 THEN
        RAISE EXCEPTION 'a training set needs at least one feature'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR rf IN SELECT f.*, ft.type FROM fstore._resolve_features(features) f
                JOIN fstore.features ft ON ft.view_name = f.view_name AND ft.name = f.feature
               ORDER BY f.pos LOOP
        IF rf.output_name = ANY (v_cols) OR rf.output_name = ANY (v_outs) THEN
            RAISE EXCEPTION 'training set has two columns named "%"', rf.output_name
                USING ERRCODE = 'duplicate_column',
                      HINT = 'Rename the feature with AS, or the entity query''s column.';
        END IF;
        v_outs := v_outs || rf.output_name;
        v_otypes := v_otypes || rf.type;
        IF NOT (rf.view_name = ANY (v_views)) THEN
            v_views := v_views || rf.view_name;
        END IF;
    END LOOP;

    FOR i IN 1 .. cardinality(v_views) LOOP
        SELECT e.key_columns, e.key_types INTO v_keys, v_ktypes
          FROM fstore.feature_views v JOIN fstore.entities e ON e.name = v.entity
         WHERE v.name = v_views[i];
        FOR r IN SELECT k, t FROM unnest(v_keys, v_ktypes) AS x(k, t) LOOP
            v_pos := array_position(v_cols, r.k);
            IF v_pos IS NULL THEN
                RAISE EXCEPTION 'entity query has no column "%", a key of feature view "%"', r.k, v_views[i]
                    USING ERRCODE = 'undefined_column';
            END IF;
            IF v_types[v_pos]::regtype <> r.t::regtype THEN
                RAISE EXCEPTION 'column "%" of the entity query has type %, but the key of feature view "%" has type %',
                                r.k, v_types[v_pos], v_views[i], r.t
                    USING ERRCODE = 'datatype_mismatch',
                          HINT = format('Cast it in the entity query: %I::%s.', r.k, r.t);
            END IF;
        END LOOP;
    END LOOP;

    -- lateral: an index probe per entity row and view; hash: one pass over
    -- each view's history per chunk of entity rows.  A probe costs about as
    -- much as reading 100 history rows in a pass, so probes win while the
    -- entity rows (times views) are under about 1% of the history rows.
    IF v_strategy = 'auto' THEN
        v_est := fstore._estimate_rows(v_query);
        SELECT sum(CASE WHEN c.reltuples >= 0 THEN c.reltuples
                        ELSE pg_catalog.pg_relation_size(c.oid) / 64.0 END)
          INTO v_hist
          FROM unnest(v_views) AS x(v)
          JOIN pg_catalog.pg_class c ON c.oid = format('fstore_offline.%I', x.v)::regclass;
        v_strategy := CASE WHEN v_est * cardinality(v_views) <= 0.01 * v_hist THEN 'lateral' ELSE 'hash' END;
    END IF;
    -- sharded views: their history is on the shards, read by probes (docs/scale-out.md)
    IF v_strategy = 'hash' AND EXISTS (SELECT 1 FROM fstore.sharded_views s WHERE s.view_name = ANY (v_views)) THEN
        v_strategy := 'lateral';
    END IF;

    IF v_strategy = 'hash' THEN
        RETURN fstore._with_derived(features, format(E'SELECT *\n  FROM fstore.as_of_join(\n         entity_query => %L,\n         features => ARRAY[%s]%s)\n    AS fs_t(%s)',
                      v_query,
                      (SELECT string_agg(quote_literal(x), ', ' ORDER BY n) FROM unnest(features) WITH ORDINALITY AS u(x, n)),
                      CASE WHEN created_before IS NULL THEN ''
                           ELSE format(E',\n         created_before => %L', created_before) END,
                      (SELECT string_agg(format('%I %s', c, t), ', ' ORDER BY n)
                         FROM unnest(v_cols || v_outs, v_types || v_otypes) WITH ORDINALITY AS u(c, t, n))));
    END IF;

    v_select := (SELECT string_agg('fs_e.' || quote_ident(c), ', ' ORDER BY n)
                   FROM unnest(v_cols) WITH ORDINALITY AS x(c, n));
    FOR i IN 1 .. cardinality(v_views) LOOP
        SELECT e.key_columns, e.key_types, v.ttl INTO v_keys, v_ktypes, v_ttl
          FROM fstore.feature_views v JOIN fstore.entities e ON e.name = v.entity
         WHERE v.name = v_views[i];
        SELECT string_agg(format('fs_o.%I AS c%s', f.feature, f.pos), ', ' ORDER BY f.pos)
          INTO v_fcols
          FROM fstore._resolve_features(features) f WHERE f.view_name = v_views[i];
        -- every operator and type qualified: the text is run by callers
        -- with their own search_path
        v_from := v_from || format(E'\n  LEFT JOIN LATERAL (\n    SELECT %s\n      FROM fstore_offline.%I fs_o\n     WHERE %s AND fs_o.event_ts OPERATOR(pg_catalog.<=) fs_e.event_ts%s%s\n     ORDER BY fs_o.event_ts DESC, fs_o.created_at DESC LIMIT 1) fs_v%s ON true',
            v_fcols, v_views[i],
            (SELECT string_agg(format('fs_o.%1$I %2$s fs_e.%1$I', k, fstore._eq_operator(t::regtype)), ' AND ')
               FROM unnest(v_keys, v_ktypes) AS x(k, t)),
            CASE WHEN v_ttl IS NULL THEN '' ELSE format(' AND fs_o.event_ts OPERATOR(pg_catalog.>=) (fs_e.event_ts OPERATOR(pg_catalog.-) %L::pg_catalog.interval)', v_ttl) END,
            CASE WHEN created_before IS NULL THEN '' ELSE format(' AND fs_o.created_at OPERATOR(pg_catalog.<=) %L::pg_catalog.timestamptz', created_before) END,
            i);
    END LOOP;
    v_select := v_select || (SELECT string_agg(format(', fs_v%s.c%s AS %I', array_position(v_views, f.view_name), f.pos, f.output_name), '' ORDER BY f.pos)
                               FROM fstore._resolve_features(features) f);
    RETURN fstore._with_derived(features, format(E'SELECT %s\n  FROM (SELECT pg_catalog.row_number() OVER () AS fs_row, fs_q.*\n          FROM (\n%s\n) AS fs_q) AS fs_e%s\n ORDER BY fs_e.fs_row',
                  v_select, v_query, v_from));
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_create_training_set(name text, entity_query text, features text[],
    created_before timestamptz DEFAULT NULL, strategy text DEFAULT 'auto')
RETURNS bigint LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the joins are index probes and scans: compiling them costs more than it saves
SET jit = off
AS $fn$
DECLARE
    v_name text := fstore._check_name($1, 'training set');
    v_sql  text;
    v_rows bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM fstore.training_sets t WHERE t.name = v_name) THEN
        RAISE EXCEPTION 'training set "%" already exists', v_name
            USING ERRCODE = 'duplicate_object';
    END IF;
    v_sql := @extschema@.fs_training_set_query(entity_query, features, created_before, strategy);
    -- fstore.progress shows the build (an error ends the report)
    PERFORM fstore._progress_begin('training set', v_name, 'building');
    EXECUTE format('CREATE TABLE fstore_training.%I AS %s', v_name, v_sql);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    PERFORM fstore._progress_end();
    INSERT INTO fstore.training_sets (name, entity_query, features, created_before, query, row_count)
    VALUES (v_name, entity_query, features, created_before, v_sql, v_rows);
    RETURN v_rows;
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_drop_training_set(name text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    DELETE FROM fstore.training_sets t WHERE t.name = $1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'training set "%" does not exist', $1
            USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS fstore_training.%I', $1);
END
$fn$;

CREATE OR REPLACE FUNCTION @extschema@.fs_set_freshness_target(view text, target interval)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF target IS NOT NULL AND target <= interval '0' THEN
        RAISE EXCEPTION 'freshness target must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM fstore.feature_views v WHERE v.name = $1) THEN
        -- an aggregation view (that section of the script is later)
        IF to_regclass('fstore.aggregation_views') IS NOT NULL THEN
            EXECUTE 'UPDATE fstore.aggregation_views a SET freshness_target = $2
                      WHERE a.name = $1 AND a.freshness_target IS DISTINCT FROM $2'
              USING $1, target;
            IF EXISTS (SELECT 1 FROM fstore.aggregation_views a WHERE a.name = $1) THEN
                RETURN;
            END IF;
        END IF;
        RAISE EXCEPTION 'feature view "%" does not exist', $1
            USING ERRCODE = 'undefined_object';
    END IF;
    -- the same target again changes nothing (a definitions file sets it
    -- at every deployment)
    UPDATE fstore.feature_views v SET freshness_target = target
     WHERE v.name = $1 AND v.freshness_target IS DISTINCT FROM target;
END
$fn$;

-- ---------------------------------------------------------------------------
-- Monitoring
-- ---------------------------------------------------------------------------

-- fstore.stats and fstore.freshness read the queues through the C function
-- fstore._queue_state (which takes over the name of 0.1's SECURITY DEFINER
-- PL/pgSQL function, with a renamed parameter) instead of _queue_depth and
-- _queue_state; fstore.freshness gains stream_workers and queue_stalled,
-- and fs_check_freshness() a problem column.  None of that can be done in
-- place: drop them, dependents first, and create them as 0.2 does.
--
-- What is dropped loses the privileges set on it; they come back as 0.2
-- sets them.  Say so when they had been changed since installation (they
-- differ from what pg_init_privs recorded), so they can be set again.
DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT pg_catalog.pg_describe_object(o.classid, o.objid, 0) AS what, o.acl
          FROM (SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, c.oid AS objid,
                       c.relacl AS acl
                  FROM pg_catalog.pg_class c
                 WHERE c.oid IN ('fstore.stats'::pg_catalog.regclass,
                                 'fstore.freshness'::pg_catalog.regclass)
                UNION ALL
                SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, p.proacl
                  FROM pg_catalog.pg_proc p
                 WHERE p.oid IN ('fstore._queue_depth(text)'::pg_catalog.regprocedure,
                                 'fstore._queue_state(text)'::pg_catalog.regprocedure,
                                 '@extschema@.fs_check_freshness()'::pg_catalog.regprocedure)) o
          LEFT JOIN pg_catalog.pg_init_privs i
            ON i.classoid = o.classid AND i.objoid = o.objid AND i.objsubid = 0
         WHERE o.acl IS DISTINCT FROM i.initprivs
         ORDER BY 1
    LOOP
        RAISE WARNING 'privileges on % are reset to those of fstore 0.2', r.what
            USING DETAIL = pg_catalog.format('They were %s.', coalesce(r.acl::text, 'the default')),
                  HINT = 'Grant or revoke again, after the update, what was changed.';
    END LOOP;
END
$do$;

DROP FUNCTION @extschema@.fs_check_freshness();
DROP VIEW fstore.freshness;
DROP VIEW fstore.stats;
DROP FUNCTION fstore._queue_state(text);
DROP FUNCTION fstore._queue_depth(text);

-- Depth and oldest event_ts of a view's queue, read by fstore.stats and
-- fstore.freshness.  A C function that scans the queue's heap directly
-- (refusing anything but a plain table), so it runs no code of the view's
-- owner; not SECURITY DEFINER: it needs no privilege on the queue and
-- returns a count and a time only.
CREATE FUNCTION fstore._queue_state(view_name text, OUT depth bigint, OUT oldest timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'fs_queue_state'
LANGUAGE C STRICT VOLATILE;

-- The stream workers of this database (shared memory; NULLs where unknown).
CREATE FUNCTION fstore._stream_state(OUT preloaded bool, OUT workers int,
    OUT wanted_since timestamptz, OUT launch_failed_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'fs_stream_state'
LANGUAGE C STRICT VOLATILE;

-- What every running fs_materialize, training-set build and stream batch
-- of this database is doing (shared memory; empty unless preloaded).
CREATE FUNCTION fstore._progress(OUT pid int, OUT kind text, OUT view_id bigint,
    OUT view_name text, OUT phase text, OUT rows_done bigint, OUT rows_total bigint,
    OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fs_progress'
LANGUAGE C STRICT VOLATILE;

-- Reports of work done in SQL (training-set builds) to fstore.progress.
CREATE FUNCTION fstore._progress_begin(kind text, name text, phase text,
    rows_total bigint DEFAULT NULL) RETURNS void
AS 'MODULE_PATHNAME', 'fs_progress_sql_begin'
LANGUAGE C VOLATILE;

CREATE FUNCTION fstore._progress_end() RETURNS void
AS 'MODULE_PATHNAME', 'fs_progress_sql_end'
LANGUAGE C VOLATILE;

CREATE VIEW fstore.progress AS
SELECT p.pid, p.kind, p.view_name, p.phase, p.rows_done, p.rows_total,
       p.started_at, now() - p.started_at AS elapsed
  FROM fstore._progress() p;
GRANT SELECT ON fstore.progress TO PUBLIC;

-- ---------------------------------------------------------------------------
-- New C functions, changed signatures
-- ---------------------------------------------------------------------------

-- After fs_alter_feature_view: locks out the view's writers and makes the
-- hot cache drop the view's entries at commit (owner only).
CREATE FUNCTION fstore._view_changed(view_name text) RETURNS void
AS 'MODULE_PATHNAME', 'fs_view_changed'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION @extschema@.fs_materialize(view text,
    since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL,
    lookback interval DEFAULT NULL,
    OUT read bigint, OUT written bigint, OUT unchanged bigint, OUT late bigint,
    OUT seconds float8)
RETURNS record
AS 'MODULE_PATHNAME', 'fs_materialize'
LANGUAGE C VOLATILE;

-- The functions whose signature changed exist twice now.  What was granted
-- or revoked on the 0.1 function is carried over to the new one (and not
-- recorded as initial privileges, so pg_dump still dumps it); then the 0.1
-- function is dropped.
DO $do$
DECLARE
    p record;
    a record;
BEGIN
    FOR p IN
        SELECT n.oid AS new_oid, n.oid::pg_catalog.regprocedure::pg_catalog.text AS new_sig, o.proacl
          FROM (VALUES ('@extschema@.fs_create_entity(text,text)',
                        '@extschema@.fs_create_entity(text,text,boolean)'),
                       ('@extschema@.fs_create_feature_view(text,text,text,regclass,name,interval,text)',
                        '@extschema@.fs_create_feature_view(text,text,text,regclass,name,interval,text,boolean)'),
                       ('@extschema@.fs_schedule_materialize(text,text)',
                        '@extschema@.fs_schedule_materialize(text,text,interval,boolean)'),
                       ('@extschema@.fs_materialize(text,timestamptz,timestamptz)',
                        '@extschema@.fs_materialize(text,timestamptz,timestamptz,interval)')) AS x(o, n)
          JOIN pg_catalog.pg_proc o ON o.oid = x.o::pg_catalog.regprocedure
          JOIN pg_catalog.pg_proc n ON n.oid = x.n::pg_catalog.regprocedure
    LOOP
        IF p.proacl IS NOT NULL THEN
            EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', p.new_sig);
            FOR a IN SELECT * FROM pg_catalog.aclexplode(p.proacl) LOOP
                EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s', p.new_sig,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::pg_catalog.regrole::pg_catalog.text END,
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
            END LOOP;
        END IF;
        DELETE FROM pg_catalog.pg_init_privs i
         WHERE i.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND i.objoid = p.new_oid;
    END LOOP;
END
$do$;
DROP FUNCTION @extschema@.fs_create_entity(text, text);
DROP FUNCTION @extschema@.fs_create_feature_view(text, text, text, regclass, name, interval, text);
DROP FUNCTION @extschema@.fs_schedule_materialize(text, text);
DROP FUNCTION @extschema@.fs_materialize(text, timestamptz, timestamptz);

-- ---------------------------------------------------------------------------
-- Privileges of the internal helpers
-- ---------------------------------------------------------------------------

-- As fstore--0.2.sql sets them.  What was granted to other roles stays; a
-- role that defines entities, views or services needs the grants listed in
-- docs/operations.md, "Delegating feature definitions", from now on.

-- Helpers are not for PUBLIC.  The exceptions are what any role's own
-- calls need and what cannot be misused: the monitoring views' sources
-- (read-only, running no other role's code), the row counter in
-- fs_write_query's query, the training-set helpers analysts' calls use
-- (pure, or checking privileges themselves), and the trigger functions.
-- Roles that define entities, views and services get the rest by grant
-- (docs/operations.md, "Security model").
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA fstore FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    fstore._stats(), fstore._cache_stats(), fstore._queue_state(text),
    fstore._stream_state(), fstore._progress(),
    fstore._progress_begin(text, text, text, bigint), fstore._progress_end(),
    fstore._job_name(text), fstore._job_command(text, interval), fstore._require_pg_cron(), fstore._unschedule(text),
    fstore._ordinal(),
    fstore._check_name(text, text, int), fstore._check_select(text),
    fstore._query_columns(text), fstore._resolve_features(text[]),
    fstore._with_derived(text[], text),
    fstore._estimate_rows(text), fstore._eq_operator(regtype),
    fstore.as_of_join(text, text[], timestamptz),
    fstore._catalog_changed(), fstore._online_dml(), fstore._stream_enqueued(),
    fstore._catalog_guard()
    TO PUBLIC;

-- PostgreSQL records the whole new ACL of each function changed above as
-- its initial privileges (pg_init_privs), including what was granted to
-- other roles since 0.1 was installed; pg_dump leaves out what matches the
-- initial privileges, so it would no longer dump those grants, and a
-- restore would lose them.  Keep as initial only what fstore itself grants
-- (to the owner and to PUBLIC), as a fresh install records it.
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = (SELECT pg_catalog.array_agg(a.item ORDER BY a.n)
                      FROM pg_catalog.unnest(i.initprivs) WITH ORDINALITY AS a(item, n)
                     WHERE (SELECT x.grantee FROM pg_catalog.aclexplode(ARRAY[a.item]) x LIMIT 1)
                           IN (0, p.proowner))
  FROM pg_catalog.pg_proc p
 WHERE i.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND i.objoid = p.oid AND i.objsubid = 0 AND i.privtype = 'e'
   AND p.pronamespace = 'fstore'::pg_catalog.regnamespace
   AND EXISTS (SELECT 1 FROM pg_catalog.unnest(i.initprivs) AS a(item)
                WHERE (SELECT x.grantee FROM pg_catalog.aclexplode(ARRAY[a.item]) x LIMIT 1)
                      NOT IN (0, p.proowner));

-- ---------------------------------------------------------------------------
-- pg_cron jobs
-- ---------------------------------------------------------------------------

-- fs_schedule_materialize of 0.1 made jobs that run
--     SELECT * FROM <schema>.fs_materialize('<view>')
-- 0.2 makes them run fs_materialize with exactly typed arguments, which no
-- other function can match (docs/operations.md, "Materialization and
-- freshness").  The old command still works with 0.2, but a function
-- created in fstore's schema could capture it; so the jobs 0.1 made are
-- given the command 0.2 would give them, through cron.alter_job (pg_cron
-- 1.4 and later).  Only jobs of this database, named as fstore names the job
-- of an existing view and running exactly 0.1's command, are changed; their
-- schedule, owner (username) and state are kept.  A job someone changed is
-- left alone.  The update runs as a superuser, for whom cron.alter_job
-- changes any role's job, but not when cron.enable_superuser_jobs is off;
-- a job that cannot be changed (that, or an older pg_cron) is left as it
-- was, with a warning saying how to change it.
DO $do$
DECLARE
    v_schema text := (SELECT n.nspname FROM pg_catalog.pg_extension e
                        JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                       WHERE e.extname = 'fstore');
    v_alter  bool := pg_catalog.to_regprocedure('cron.alter_job(bigint,text,text,text,text,boolean)') IS NOT NULL;
    v_cmd    text;
    r        record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    FOR r IN EXECUTE
        'SELECT j.jobid, j.jobname::pg_catalog.text AS jobname, j.schedule, v.name AS view_name
           FROM cron.job j
           JOIN fstore.feature_views v ON j.jobname = fstore._job_name(v.name)
          WHERE j.database = pg_catalog.current_database()
            AND j.command = pg_catalog.format(''SELECT * FROM %I.fs_materialize(%L)'', $1, v.name)
          ORDER BY j.jobid'
        USING v_schema
    LOOP
        -- the command of 0.2's fs_schedule_materialize
        v_cmd := fstore._job_command(r.view_name, NULL);
        BEGIN
            IF NOT v_alter THEN
                RAISE EXCEPTION 'function cron.alter_job does not exist (pg_cron before 1.4)';
            END IF;
            EXECUTE 'SELECT cron.alter_job($1, command => $2)' USING r.jobid, v_cmd;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg_cron job % (%) keeps the command of fstore 0.1', r.jobid, r.jobname
                USING DETAIL = pg_catalog.format('cron.alter_job: %s', SQLERRM),
                      HINT = pg_catalog.format('The job still works.  To give it the command of 0.2, run as its owner: SELECT %I.fs_schedule_materialize(%L, %L);',
                                               v_schema, r.view_name, r.schedule);
        END;
    END LOOP;
END
$do$;

-- ===========================================================================
-- Aggregation views (issue 14): sliding-window aggregates over raw events,
-- kept as per-key tiles of partial aggregates (docs/aggregations.md;
-- src/aggregate/aggregate.c).  This section is the same in fstore--0.2.sql
-- and fstore--0.1--0.2.sql.
-- ===========================================================================

CREATE TABLE fstore.aggregation_views (
    view_id          bigint PRIMARY KEY
                     DEFAULT pg_catalog.nextval('fstore.feature_views_view_id_seq'::pg_catalog.regclass),
    name             text NOT NULL UNIQUE,
    entity           text NOT NULL REFERENCES fstore.entities (name),
    events           text NOT NULL,        -- event columns, as SQL ('"a" int, ...')
    aggregations     text[] NOT NULL,      -- as given
    granularity      interval NOT NULL,    -- tile size (whole seconds)
    max_window       interval NOT NULL,    -- longest window
    retention        interval NOT NULL,    -- tiles kept beyond the longest window
    max_future       interval NOT NULL,    -- events later than now() + this are refused
    source           text,                 -- backfills: qualified relation, or
    source_query     text,                 -- a SELECT
    timestamp_column name NOT NULL DEFAULT 'event_ts',
    watermark        timestamptz NOT NULL DEFAULT '-infinity',
    aggs_sql         text NOT NULL,        -- aggregate expressions over tiles fs_t at time $T, key $K
    upsert_sql       text NOT NULL,        -- INSERT of the tiles of events fs_ok
    gc_sql           text NOT NULL,        -- DELETE of the expired tiles of keys of fs_ok ($1)
    event_columns    name[] NOT NULL,
    read_sql         text NOT NULL,        -- $1 keys, $2 time: one row per key, in order
    freshness_target interval,             -- fs_set_freshness_target (fstore.freshness)
    tile_columns     text[] NOT NULL,      -- what each fs_<n> tile column holds: 'c:<event column>' (count),
                                           -- 's:' (sum), 'mn:' (min), 'mx:' (max), 'd:' (distinct values),
                                           -- 'h:' (HyperLogLog sketch)
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (source IS NULL OR source_query IS NULL)
);

CREATE TABLE fstore.aggregations (
    view_name   text NOT NULL REFERENCES fstore.aggregation_views (name) ON DELETE CASCADE,
    position    int NOT NULL,
    name        name NOT NULL,             -- output column
    func        text NOT NULL,             -- count, count_distinct, approx_count_distinct, sum, avg, min, max
    arg         name,                      -- event column, NULL for count(*)
    window_size interval NOT NULL,
    type        text NOT NULL,             -- output type
    PRIMARY KEY (view_name, position),
    UNIQUE (view_name, name)
);

SELECT pg_catalog.pg_extension_config_dump('fstore.aggregation_views', '');
SELECT pg_catalog.pg_extension_config_dump('fstore.aggregations', '');
GRANT SELECT ON fstore.aggregation_views, fstore.aggregations TO PUBLIC;

CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE ON fstore.aggregation_views
    FOR EACH ROW EXECUTE FUNCTION fstore._catalog_guard();
CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE ON fstore.aggregations
    FOR EACH ROW EXECUTE FUNCTION fstore._catalog_guard();

-- The features feature services take from aggregation views (those from
-- feature views are in fstore.service_features; position numbers the
-- service's features across both tables).
CREATE TABLE fstore.service_aggregations (
    service     text NOT NULL REFERENCES fstore.feature_services (name)
                ON DELETE CASCADE,
    position    int NOT NULL,
    view_name   text NOT NULL REFERENCES fstore.aggregation_views (name),
    feature     name NOT NULL,
    output_name name NOT NULL,
    PRIMARY KEY (service, position),
    UNIQUE (service, output_name)
);
SELECT pg_catalog.pg_extension_config_dump('fstore.service_aggregations', '');
GRANT SELECT ON fstore.service_aggregations TO PUBLIC;
CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE ON fstore.service_aggregations
    FOR EACH ROW EXECUTE FUNCTION fstore._catalog_guard();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON fstore.service_aggregations FOR EACH STATEMENT
    EXECUTE FUNCTION fstore._catalog_changed();

-- What the writers of each aggregation view last did (fs_write, stream
-- batches, fs_materialize; read by fstore.freshness), as fstore.view_state
-- for feature views.
CREATE TABLE fstore.aggregation_state (
    view_id       bigint PRIMARY KEY
                  REFERENCES fstore.aggregation_views (view_id) ON DELETE CASCADE,
    last_event_ts timestamptz,        -- newest event_ts added to the tiles
    last_write_at timestamptz         -- wall-clock time of the last write
);
SELECT pg_catalog.pg_extension_config_dump('fstore.aggregation_state', '');
GRANT SELECT ON fstore.aggregation_state TO PUBLIC;

-- Raises the error of an event that fs_write or fs_materialize refuses
-- (1: NULL key or event_ts, 2: infinite event_ts, 3: too far in the future).
CREATE FUNCTION fstore._agg_refuse(p_view text, p_code int, p_ts timestamptz)
RETURNS int LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF p_code = 1 THEN
        RAISE EXCEPTION 'null value in a key column or event_ts of an event for aggregation view "%"', p_view
            USING ERRCODE = 'not_null_violation';
    ELSIF p_code = 2 THEN
        RAISE EXCEPTION 'event_ts of an event for aggregation view "%" is not finite', p_view
            USING ERRCODE = 'datetime_field_overflow';
    ELSIF p_code = 3 THEN
        RAISE EXCEPTION 'event_ts % of an event for aggregation view "%" is too far in the future', p_ts, p_view
            USING ERRCODE = 'datetime_field_overflow',
                  DETAIL = format('Events later than now() + max_future (%s) are refused.',
                                  (SELECT a.max_future FROM fstore.aggregation_views a WHERE a.name = p_view));
    END IF;
    RETURN p_code;
END
$fn$;

-- Statement trigger on the queue tables of aggregation views: wakes the
-- view's stream worker when the inserting transaction commits.
CREATE FUNCTION fstore._agg_enqueued() RETURNS trigger
AS 'MODULE_PATHNAME', 'fs_agg_enqueued'
LANGUAGE C;

-- approx_count_distinct: a HyperLogLog sketch per tile (bytea), merged at
-- read time (src/aggregate/hll.c; docs/aggregations.md).
CREATE FUNCTION fstore._hll_add(internal, anyelement) RETURNS internal
AS 'MODULE_PATHNAME', 'fs_hll_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION fstore._hll_sketch_final(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'fs_hll_sketch_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE fstore._hll_sketch(anyelement) (
    SFUNC = fstore._hll_add, STYPE = internal, FINALFUNC = fstore._hll_sketch_final);
CREATE FUNCTION fstore._hll_merge(bytea, bytea) RETURNS bytea
AS 'MODULE_PATHNAME', 'fs_hll_merge' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION fstore._hll_union(internal, bytea) RETURNS internal
AS 'MODULE_PATHNAME', 'fs_hll_union' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION fstore._hll_count_final(internal) RETURNS bigint
AS 'MODULE_PATHNAME', 'fs_hll_count_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE AGGREGATE fstore._hll_count(bytea) (
    SFUNC = fstore._hll_union, STYPE = internal, FINALFUNC = fstore._hll_count_final);
CREATE FUNCTION fstore._hll_estimate(bytea) RETURNS bigint
AS 'MODULE_PATHNAME', 'fs_hll_estimate' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION fstore._hll_hashable(regtype) RETURNS bool
AS 'MODULE_PATHNAME', 'fs_hll_hashable' LANGUAGE C STRICT STABLE PARALLEL SAFE;

-- An interval of whole seconds as an exact SQL literal.
CREATE FUNCTION fstore._agg_secs(p_secs bigint) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT format('%L::pg_catalog.interval', p_secs || ' seconds');
$fn$;

-- Whole seconds of an interval without months (NULL if it has months or
-- fractions of a second).
CREATE FUNCTION fstore._agg_seconds(p_iv interval) RETURNS bigint
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT CASE WHEN extract(month FROM p_iv) = 0 AND extract(year FROM p_iv) = 0
                 AND extract(epoch FROM p_iv) = trunc(extract(epoch FROM p_iv))
                THEN extract(epoch FROM p_iv)::bigint END;
$fn$;

CREATE FUNCTION @extschema@.fs_create_aggregation_view(
    name text,
    entity text,
    events text,
    aggregations text[],
    granularity interval DEFAULT '1 minute',
    retention interval DEFAULT '7 days',
    max_future interval DEFAULT '5 minutes',
    source regclass DEFAULT NULL,
    timestamp_column name DEFAULT 'event_ts',
    source_query text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres'
AS $fn$
DECLARE
    v_name     text := fstore._check_name($1, 'aggregation view');
    v_entity   text := $2;
    v_keys     name[];
    v_ktypes   text[];
    v_ecols    name[] := '{}';
    v_etypes   regtype[] := '{}';
    v_etsql    text[] := '{}';
    v_ebtree   bool[] := '{}';
    v_edefs    text := '';
    v_gsecs    bigint;
    v_wsecs    bigint;
    v_maxw     bigint := 0;
    v_rsecs    bigint;
    v_spec     text;
    v_m        text[];
    v_func     text;
    v_dist     bool;
    v_arg      text;
    v_argpos   int;
    v_argtype  regtype;
    v_out      text;
    v_outs     name[] := '{}';
    v_funcs    text[] := '{}';
    v_args     name[] := '{}';
    v_wins     interval[] := '{}';
    v_otypes   text[] := '{}';
    v_exprs    text[] := '{}';
    -- tile columns: one per (kind, event column)
    v_tkeys    text[] := '{}';
    v_tdefs    text := '';
    v_tsel     text := '';
    v_tmerge   text := '';
    v_tcols    text := '';
    v_tc       text;
    v_tc2      text;
    v_filter   text;
    v_keydefs  text;
    v_keylist  text;
    v_kjoin    text;
    v_source   text;
    v_query    text;
    v_aggs_sql text;
    v_upsert   text;
    v_read     text;
    v_gc       text;
    v_view_sql text;
    v_keysel   text;
    v_unnest   text;
    v_notnull  text;
    v_ktype    regtype;
    v_id       bigint;
    r record;
    i int;

    -- adds the tile column of (kind, event column) once; returns its name
BEGIN
    PERFORM fstore._lock_catalog();
    IF v_entity IS NULL THEN
        RAISE EXCEPTION 'entity of aggregation view "%" must not be NULL', v_name
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT fstore._entity_exists(v_entity) THEN
        RAISE EXCEPTION 'entity "%" does not exist', v_entity
            USING ERRCODE = 'undefined_object';
    END IF;
    IF EXISTS (SELECT 1 FROM fstore.aggregation_views a WHERE a.name = v_name)
       OR EXISTS (SELECT 1 FROM fstore.feature_views v WHERE v.name = v_name)
       OR EXISTS (SELECT 1 FROM fstore.feature_services s WHERE s.name = v_name) THEN
        RAISE EXCEPTION 'a feature view, aggregation view or feature service named "%" already exists', v_name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = 'They share the fstore_online namespace.';
    END IF;
    IF events IS NULL OR aggregations IS NULL OR cardinality(aggregations) = 0 THEN
        RAISE EXCEPTION 'aggregation view "%" needs event columns and at least one aggregation', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF granularity IS NULL OR retention IS NULL OR max_future IS NULL OR timestamp_column IS NULL THEN
        RAISE EXCEPTION 'granularity, retention, max_future and timestamp_column must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_gsecs := fstore._agg_seconds(granularity);
    IF v_gsecs IS NULL OR v_gsecs < 1 OR v_gsecs > 86400 THEN
        RAISE EXCEPTION 'invalid granularity %', granularity
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The granularity must be a whole number of seconds from 1 second to 1 day.';
    END IF;
    v_rsecs := fstore._agg_seconds(retention);
    IF v_rsecs IS NULL OR v_rsecs < 0 OR fstore._agg_seconds(max_future) IS NULL
       OR max_future < interval '0' OR max_future > interval '1 day' THEN
        RAISE EXCEPTION 'invalid retention % or max_future %', retention, max_future
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Both are whole seconds without months; retention at least 0, max_future from 0 to 1 day.';
    END IF;

    SELECT e.key_columns, e.key_types, e.key_type INTO v_keys, v_ktypes, v_ktype
      FROM fstore.entities e WHERE e.name = v_entity;
    FOR i IN 1 .. cardinality(v_keys) LOOP
        IF v_keys[i] IN ('tile_start', 'event_ts') OR v_keys[i] LIKE 'fs\_%' THEN
            RAISE EXCEPTION 'key column "%" of entity "%" has a name aggregation views reserve', v_keys[i], v_entity
                USING ERRCODE = 'reserved_name',
                      DETAIL = 'Aggregation views use event_ts, tile_start and names starting with fs_ for their own columns.';
        END IF;
    END LOOP;

    FOR r IN SELECT * FROM fstore._parse_columns(events) LOOP
        PERFORM fstore._check_name(r.colname, 'event column');
        IF r.colname = ANY (v_keys) OR r.colname IN ('event_ts', 'tile_start') OR r.colname LIKE 'fs\_%' THEN
            RAISE EXCEPTION 'event column "%" has a reserved name or the name of a key column', r.colname
                USING ERRCODE = 'reserved_name';
        END IF;
        IF r.colname = ANY (v_ecols) THEN
            RAISE EXCEPTION 'event column "%" is listed more than once', r.colname
                USING ERRCODE = 'duplicate_column';
        END IF;
        v_ecols := v_ecols || r.colname;
        v_etypes := v_etypes || r.coltype::regtype;
        v_etsql := v_etsql || r.typesql;
        v_ebtree := v_ebtree || r.has_btree;
        v_edefs := v_edefs || format(', %I %s', r.colname, r.typesql);
    END LOOP;

    -- the aggregations: func([DISTINCT] col | *) OVER <interval> AS name
    FOR i IN 1 .. cardinality(aggregations) LOOP
        v_spec := aggregations[i];
        IF v_spec IS NULL THEN
            RAISE EXCEPTION 'aggregation % must not be NULL', i
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        v_m := regexp_match(v_spec,
            '^(\s*)([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*((?:[Dd][Ii][Ss][Tt][Ii][Nn][Cc][Tt]\s+)?)("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*|\*)\s*\)\s+[Oo][Vv][Ee][Rr]\s+(.+?)\s+[Aa][Ss]\s+([a-z_][a-z0-9_]*)\s*$');
        IF v_m IS NULL THEN
            RAISE EXCEPTION 'syntax error in aggregation %: "%"', i, v_spec
                USING ERRCODE = 'syntax_error',
                      DETAIL = 'An aggregation reads: function(column) OVER window AS name, for example ''sum(clicks) OVER 1 day AS clicks_1d''.',
                      HINT = 'Functions: count(*), count(column), count(DISTINCT column), approx_count_distinct(column), sum, avg, min, max; names are lowercase identifiers.';
        END IF;
        v_func := lower(v_m[2]);
        v_dist := v_m[3] <> '';
        v_arg := CASE WHEN v_m[4] = '*' THEN NULL
                      WHEN v_m[4] LIKE '"%' THEN replace(substr(v_m[4], 2, length(v_m[4]) - 2), '""', '"')
                      ELSE lower(v_m[4]) END;
        v_out := v_m[6];
        IF v_func NOT IN ('count', 'sum', 'avg', 'min', 'max', 'approx_count_distinct')
           OR (v_dist AND v_func <> 'count')
           OR (v_arg IS NULL AND v_func <> 'count')
           OR (v_arg IS NULL AND v_dist) THEN
            RAISE EXCEPTION 'aggregate function %(%) is not supported in aggregation views',
                  v_m[2], CASE WHEN v_dist THEN 'DISTINCT ' ELSE '' END || v_m[4]
                USING ERRCODE = 'undefined_function',
                      DETAIL = format('In aggregation %s ("%s"), at character %s.', i, v_spec, length(v_m[1]) + 1),
                      HINT = 'Functions: count(*), count(column), count(DISTINCT column), approx_count_distinct(column), sum, avg, min, max.';
        END IF;
        v_argpos := CASE WHEN v_arg IS NULL THEN NULL ELSE array_position(v_ecols, v_arg::name) END;
        IF v_arg IS NOT NULL AND v_argpos IS NULL THEN
            RAISE EXCEPTION 'column "%" does not exist among the events of aggregation view "%"', v_arg, v_name
                USING ERRCODE = 'undefined_column',
                      DETAIL = format('In aggregation %s ("%s"), at character %s.', i, v_spec,
                                      strpos(v_spec, '(') + strpos(substr(v_spec, strpos(v_spec, '(') + 1), v_m[4])),
                      HINT = format('Event columns: %s.', array_to_string(v_ecols, ', '));
        END IF;
        v_argtype := CASE WHEN v_argpos IS NULL THEN NULL ELSE v_etypes[v_argpos] END;
        IF v_func IN ('sum', 'avg') AND v_argtype NOT IN
           ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'real'::regtype,
            'double precision'::regtype, 'numeric'::regtype) THEN
            RAISE EXCEPTION 'function %(%) is not supported in aggregation views', v_func, v_argtype
                USING ERRCODE = 'undefined_function',
                      DETAIL = format('In aggregation %s ("%s"), at character %s.', i, v_spec, length(v_m[1]) + 1),
                      HINT = 'sum and avg take smallint, integer, bigint, real, double precision or numeric.';
        END IF;
        IF v_argpos IS NOT NULL AND (v_func IN ('min', 'max') OR v_dist) AND NOT v_ebtree[v_argpos] THEN
            RAISE EXCEPTION 'function %(%) is not supported in aggregation views', v_func, v_argtype
                USING ERRCODE = 'undefined_function',
                      DETAIL = format('In aggregation %s ("%s"): the type has no default btree operator class.', i, v_spec);
        END IF;
        IF v_func = 'approx_count_distinct' AND NOT fstore._hll_hashable(v_argtype) THEN
            RAISE EXCEPTION 'function %(%) is not supported in aggregation views', v_func, v_argtype
                USING ERRCODE = 'undefined_function',
                      DETAIL = format('In aggregation %s ("%s"): the type has no extended hash function.', i, v_spec);
        END IF;
        IF v_func IN ('min', 'max') AND to_regprocedure(format('pg_catalog.%s(%s)', v_func, v_argtype)) IS NULL THEN
            RAISE EXCEPTION 'function %(%) does not exist', v_func, v_argtype
                USING ERRCODE = 'undefined_function',
                      DETAIL = format('In aggregation %s ("%s"), at character %s.', i, v_spec, length(v_m[1]) + 1);
        END IF;
        BEGIN
            v_wsecs := fstore._agg_seconds(v_m[5]::interval);
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'invalid window "%" in aggregation %', v_m[5], i
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('In aggregation %s ("%s"): %s', i, v_spec, SQLERRM);
        END;
        IF v_wsecs IS NULL OR v_wsecs <= 0 OR v_wsecs % v_gsecs <> 0 OR v_wsecs > 366 * 86400 THEN
            RAISE EXCEPTION 'invalid window "%" in aggregation %', v_m[5], i
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('A window is a positive multiple of the granularity (%s), in seconds, minutes, hours or days (no months), at most 366 days.', granularity);
        END IF;
        IF v_out = ANY (v_keys) OR v_out IN ('event_ts', 'tile_start') OR v_out LIKE 'fs\_%' THEN
            RAISE EXCEPTION 'aggregation name "%" is reserved or the name of a key column', v_out
                USING ERRCODE = 'reserved_name';
        END IF;
        IF v_out = ANY (v_outs) THEN
            RAISE EXCEPTION 'aggregation "%" is listed more than once', v_out
                USING ERRCODE = 'duplicate_column';
        END IF;
        v_maxw := greatest(v_maxw, v_wsecs);
        v_outs := v_outs || v_out::name;
        v_funcs := v_funcs || CASE WHEN v_dist THEN 'count_distinct' ELSE v_func END;
        v_args := v_args || v_arg::name;
        v_wins := v_wins || make_interval(secs => v_wsecs);
        v_filter := format(' FILTER (WHERE fs_t.tile_start OPERATOR(pg_catalog.>) ($T OPERATOR(pg_catalog.-) %s))',
                           fstore._agg_secs(v_wsecs));

        -- tile columns this aggregation needs, and its expression over them
        IF v_func = 'count' AND v_arg IS NULL THEN
            v_otypes := v_otypes || 'bigint'::text;
            v_exprs := v_exprs || format('COALESCE(CAST(pg_catalog.sum(fs_t.fs_n)%s AS pg_catalog.int8), 0)', v_filter);
            CONTINUE;
        END IF;
        -- count of non-NULL values (count, avg)
        IF v_func IN ('count', 'avg') AND NOT v_dist THEN
            v_tc := 'c:' || v_arg;
            IF NOT v_tc = ANY (v_tkeys) THEN
                v_tkeys := v_tkeys || v_tc;
                v_tdefs := v_tdefs || format(', fs_%s pg_catalog.int8 NOT NULL', cardinality(v_tkeys));
                v_tcols := v_tcols || format(', fs_%s', cardinality(v_tkeys));
                v_tsel := v_tsel || format(', pg_catalog.count(fs_ok.%I)', v_arg);
                v_tmerge := v_tmerge || format(', fs_%1$s = fs_t.fs_%1$s OPERATOR(pg_catalog.+) excluded.fs_%1$s', cardinality(v_tkeys));
            END IF;
            v_tc := 'fs_' || array_position(v_tkeys, v_tc);
        END IF;
        IF v_func IN ('sum', 'avg') THEN
            v_tc2 := 's:' || v_arg;
            IF NOT v_tc2 = ANY (v_tkeys) THEN
                v_tkeys := v_tkeys || v_tc2;
                v_tdefs := v_tdefs || format(', fs_%s %s', cardinality(v_tkeys),
                    CASE WHEN v_argtype IN ('smallint'::regtype, 'integer'::regtype) THEN 'pg_catalog.int8'
                         WHEN v_argtype IN ('bigint'::regtype, 'numeric'::regtype) THEN 'pg_catalog.numeric'
                         ELSE 'pg_catalog.float8' END);
                v_tcols := v_tcols || format(', fs_%s', cardinality(v_tkeys));
                v_tsel := v_tsel || format(', pg_catalog.sum(%s)',
                    CASE WHEN v_argtype IN ('real'::regtype, 'double precision'::regtype)
                         THEN format('CAST(fs_ok.%I AS pg_catalog.float8)', v_arg)
                         ELSE format('fs_ok.%I', v_arg) END);
                v_tmerge := v_tmerge || format(', fs_%1$s = CASE WHEN fs_t.fs_%1$s IS NULL THEN excluded.fs_%1$s WHEN excluded.fs_%1$s IS NULL THEN fs_t.fs_%1$s ELSE fs_t.fs_%1$s OPERATOR(pg_catalog.+) excluded.fs_%1$s END', cardinality(v_tkeys));
            END IF;
            v_tc2 := 'fs_' || array_position(v_tkeys, v_tc2);
        END IF;
        IF v_func = 'count' AND NOT v_dist THEN
            v_otypes := v_otypes || 'bigint'::text;
            v_exprs := v_exprs || format('COALESCE(CAST(pg_catalog.sum(fs_t.%s)%s AS pg_catalog.int8), 0)', v_tc, v_filter);
        ELSIF v_func = 'sum' THEN
            IF v_argtype IN ('smallint'::regtype, 'integer'::regtype) THEN
                v_otypes := v_otypes || 'bigint'::text;
                v_exprs := v_exprs || format('CAST(pg_catalog.sum(fs_t.%s)%s AS pg_catalog.int8)', v_tc2, v_filter);
            ELSIF v_argtype IN ('bigint'::regtype, 'numeric'::regtype) THEN
                v_otypes := v_otypes || 'numeric'::text;
                v_exprs := v_exprs || format('pg_catalog.sum(fs_t.%s)%s', v_tc2, v_filter);
            ELSE
                v_otypes := v_otypes || 'double precision'::text;
                v_exprs := v_exprs || format('pg_catalog.sum(fs_t.%s)%s', v_tc2, v_filter);
            END IF;
        ELSIF v_func = 'avg' THEN
            IF v_argtype IN ('real'::regtype, 'double precision'::regtype) THEN
                v_otypes := v_otypes || 'double precision'::text;
                v_exprs := v_exprs || format('CASE WHEN pg_catalog.sum(fs_t.%2$s)%3$s OPERATOR(pg_catalog.>) 0 THEN pg_catalog.sum(fs_t.%1$s)%3$s OPERATOR(pg_catalog./) CAST(pg_catalog.sum(fs_t.%2$s)%3$s AS pg_catalog.float8) END',
                                             v_tc2, v_tc, v_filter);
            ELSE
                v_otypes := v_otypes || 'numeric'::text;
                v_exprs := v_exprs || format('CASE WHEN pg_catalog.sum(fs_t.%2$s)%3$s OPERATOR(pg_catalog.>) 0 THEN CAST(pg_catalog.sum(fs_t.%1$s)%3$s AS pg_catalog.numeric) OPERATOR(pg_catalog./) pg_catalog.sum(fs_t.%2$s)%3$s END',
                                             v_tc2, v_tc, v_filter);
            END IF;
        ELSIF v_func IN ('min', 'max') THEN
            v_tc := (CASE WHEN v_func = 'min' THEN 'mn:' ELSE 'mx:' END) || v_arg;
            IF NOT v_tc = ANY (v_tkeys) THEN
                v_tkeys := v_tkeys || v_tc;
                v_tdefs := v_tdefs || format(', fs_%s %s', cardinality(v_tkeys), v_etsql[v_argpos]);
                v_tcols := v_tcols || format(', fs_%s', cardinality(v_tkeys));
                v_tsel := v_tsel || format(', pg_catalog.%s(fs_ok.%I)', v_func, v_arg);
                v_tmerge := v_tmerge || format(', fs_%1$s = %2$s(fs_t.fs_%1$s, excluded.fs_%1$s)', cardinality(v_tkeys),
                                               CASE WHEN v_func = 'min' THEN 'LEAST' ELSE 'GREATEST' END);
            END IF;
            v_tc := 'fs_' || array_position(v_tkeys, v_tc);
            v_otypes := v_otypes || v_etsql[v_argpos];
            v_exprs := v_exprs || format('pg_catalog.%s(fs_t.%s)%s', v_func, v_tc, v_filter);
        ELSIF v_func = 'approx_count_distinct' THEN
            -- a HyperLogLog sketch per tile, merged over the window
            v_tc := 'h:' || v_arg;
            IF NOT v_tc = ANY (v_tkeys) THEN
                v_tkeys := v_tkeys || v_tc;
                v_tdefs := v_tdefs || format(', fs_%s pg_catalog.bytea', cardinality(v_tkeys));
                v_tcols := v_tcols || format(', fs_%s', cardinality(v_tkeys));
                v_tsel := v_tsel || format(', fstore._hll_sketch(fs_ok.%I)', v_arg);
                v_tmerge := v_tmerge || format(', fs_%1$s = fstore._hll_merge(fs_t.fs_%1$s, excluded.fs_%1$s)', cardinality(v_tkeys));
            END IF;
            v_tc := 'fs_' || array_position(v_tkeys, v_tc);
            v_otypes := v_otypes || 'bigint'::text;
            v_exprs := v_exprs || format('fstore._hll_count(fs_t.%s)%s', v_tc, v_filter);
        ELSE
            -- count(DISTINCT col): each tile keeps its distinct values (exact)
            v_tc := 'd:' || v_arg;
            IF NOT v_tc = ANY (v_tkeys) THEN
                v_tkeys := v_tkeys || v_tc;
                v_tdefs := v_tdefs || format(', fs_%s %s[]', cardinality(v_tkeys), v_etsql[v_argpos]);
                v_tcols := v_tcols || format(', fs_%s', cardinality(v_tkeys));
                v_tsel := v_tsel || format(', pg_catalog.array_agg(DISTINCT fs_ok.%1$I) FILTER (WHERE fs_ok.%1$I IS NOT NULL)', v_arg);
                v_tmerge := v_tmerge || format(', fs_%1$s = ARRAY(SELECT DISTINCT fs_u FROM pg_catalog.unnest(pg_catalog.array_cat(fs_t.fs_%1$s, excluded.fs_%1$s)) AS fs_u)', cardinality(v_tkeys));
            END IF;
            v_tc := 'fs_' || array_position(v_tkeys, v_tc);
            v_otypes := v_otypes || 'bigint'::text;
            -- the union of the window's tiles' values, read again by key ($K)
            v_exprs := v_exprs || format('(SELECT pg_catalog.count(DISTINCT fs_u) FROM fstore_offline.%I fs_d, pg_catalog.unnest(fs_d.%s) AS fs_u WHERE %s AND fs_d.tile_start OPERATOR(pg_catalog.>) ($T OPERATOR(pg_catalog.-) %s) AND fs_d.tile_start OPERATOR(pg_catalog.<=) $T)',
                                         v_name, v_tc,
                                         (SELECT string_agg(format('fs_d.%1$I %2$s $K.%1$I', k, fstore._eq_operator(t::regtype)), ' AND ')
                                            FROM unnest(v_keys, v_ktypes) AS x(k, t)),
                                         fstore._agg_secs(v_wsecs));
        END IF;
    END LOOP;

    -- a batch source for fs_materialize
    IF source IS NOT NULL AND source_query IS NOT NULL THEN
        RAISE EXCEPTION 'aggregation view "%" can have a source or a source query, not both', v_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF source IS NOT NULL THEN
        SELECT format('%I.%I', n.nspname, c.relname) INTO v_source
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = source;
    END IF;
    IF source_query IS NOT NULL THEN
        v_query := fstore._check_select(source_query);
    END IF;
    PERFORM fstore._check_source_columns(source, v_query, v_source,
        v_keys || v_ecols || timestamp_column, 'event column',
        'Creating an aggregation view with a source needs SELECT on the source''s columns; %I is not readable by this role.');

    v_keydefs := fstore._key_defs(v_entity, true);
    v_keylist := fstore._key_list(v_entity);
    v_kjoin := (SELECT string_agg(format('fs_t.%1$I %2$s fs_k.%1$I', k, fstore._eq_operator(t::regtype)), ' AND ')
                  FROM unnest(v_keys, v_ktypes) AS x(k, t));
    v_keysel := fstore._key_list(v_entity, 'fs_k.');
    v_notnull := (SELECT string_agg(format('fs_k.%I IS NOT NULL', k), ' AND ') FROM unnest(v_keys) AS x(k));

    -- aggregate expressions over tiles fs_t at time $T, and event_ts: the
    -- newest event of the tiles read
    v_aggs_sql := (SELECT string_agg(format('%s AS %I', e, o), ', ' ORDER BY n)
                     FROM unnest(v_exprs, v_outs) WITH ORDINALITY AS x(e, o, n))
                  || ', pg_catalog.max(fs_t.fs_last_ts) AS event_ts';

    -- the tiles: partial aggregates per key and tile
    EXECUTE format('CREATE TABLE fstore_offline.%I (%s, tile_start timestamptz NOT NULL, fs_n pg_catalog.int8 NOT NULL, fs_last_ts timestamptz NOT NULL%s, PRIMARY KEY (%s, tile_start)) WITH (fillfactor = 90)',
                   v_name, v_keydefs, v_tdefs, v_keylist);
    EXECUTE format('CREATE INDEX ON fstore_offline.%I USING brin (tile_start)', v_name);

    -- the queue and the row type of fs_write's events
    EXECUTE format('CREATE TABLE fstore_stream.%I (%s%s, event_ts timestamptz) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 100000)',
                   v_name, fstore._key_defs(v_entity), v_edefs);
    EXECUTE format('CREATE TRIGGER fstore_enqueued AFTER INSERT ON fstore_stream.%I FOR EACH STATEMENT EXECUTE FUNCTION fstore._agg_enqueued()',
                   v_name);
    EXECUTE format('ALTER TABLE fstore_stream.%I ENABLE ALWAYS TRIGGER fstore_enqueued', v_name);

    -- the online view: every key with events in its longest window, now
    v_view_sql := format('SELECT %s, %s FROM fstore_offline.%I fs_t WHERE fs_t.tile_start OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) %s) AND fs_t.tile_start OPERATOR(pg_catalog.<=) pg_catalog.now() GROUP BY %s',
                         fstore._key_list(v_entity, 'fs_t.'),
                         replace(replace(v_aggs_sql, '$T', 'pg_catalog.now()'), '$K', 'fs_t'),
                         v_name, fstore._agg_secs(v_maxw), fstore._key_list(v_entity, 'fs_t.'));
    EXECUTE format('CREATE VIEW fstore_online.%I AS %s', v_name, v_view_sql);

    -- the tiles of the events fs_ok: one upsert per (key, tile), in key order
    v_upsert := format('INSERT INTO fstore_offline.%1$I AS fs_t (%2$s, tile_start, fs_n, fs_last_ts%3$s) SELECT %4$s, pg_catalog.date_bin(%5$s, fs_ok.event_ts, %6$L::pg_catalog.timestamptz) AS fs_tile, pg_catalog.count(*), pg_catalog.max(fs_ok.event_ts)%7$s FROM fs_ok GROUP BY %4$s, fs_tile ORDER BY %4$s, fs_tile ON CONFLICT (%2$s, tile_start) DO UPDATE SET fs_n = fs_t.fs_n OPERATOR(pg_catalog.+) excluded.fs_n, fs_last_ts = GREATEST(fs_t.fs_last_ts, excluded.fs_last_ts)%8$s',
                       v_name, v_keylist, v_tcols, fstore._key_list(v_entity, 'fs_ok.'),
                       fstore._agg_secs(v_gsecs), '1970-01-01 00:00:00+00', v_tsel, v_tmerge);

    v_gc := format('DELETE FROM fstore_offline.%I fs_t USING (SELECT DISTINCT %s FROM fs_ok) fs_k WHERE %s AND fs_t.tile_start OPERATOR(pg_catalog.<) $1',
                   v_name, fstore._key_list(v_entity, 'fs_ok.'), v_kjoin);

    -- one row per key of $1 (in order) at time $2; NULL keys: NULL rows
    IF cardinality(v_keys) = 1 THEN
        v_unnest := format('pg_catalog.unnest($1) WITH ORDINALITY AS fs_k(%I, fs_ord)', v_keys[1]);
    ELSE
        v_unnest := format('pg_catalog.unnest($1) WITH ORDINALITY AS fs_k(%s, fs_ord)', v_keylist);
    END IF;
    v_read := format('SELECT %s, %s, fs_a.event_ts FROM %s LEFT JOIN LATERAL (SELECT %s FROM fstore_offline.%I fs_t WHERE %s AND fs_t.tile_start OPERATOR(pg_catalog.>) ($2 OPERATOR(pg_catalog.-) %s) AND fs_t.tile_start OPERATOR(pg_catalog.<=) $2) fs_a ON %s ORDER BY fs_k.fs_ord',
                     v_keysel,
                     (SELECT string_agg(format('fs_a.%I', o), ', ' ORDER BY n) FROM unnest(v_outs) WITH ORDINALITY AS x(o, n)),
                     v_unnest,
                     replace(replace(v_aggs_sql, '$T', '$2'), '$K', 'fs_k'),
                     v_name, v_kjoin, fstore._agg_secs(v_maxw), v_notnull);

    INSERT INTO fstore.aggregation_views (name, entity, events, aggregations, granularity, max_window,
        retention, max_future, source, source_query, timestamp_column, aggs_sql, upsert_sql, gc_sql,
        event_columns, read_sql, tile_columns)
    VALUES (v_name, v_entity, substr(v_edefs, 3), aggregations, make_interval(secs => v_gsecs),
            make_interval(secs => v_maxw), make_interval(secs => v_rsecs), max_future,
            v_source, v_query, timestamp_column, v_aggs_sql, v_upsert, v_gc, v_ecols, v_read,
            v_tkeys)
    RETURNING view_id INTO v_id;
    INSERT INTO fstore.aggregations (view_name, position, name, func, arg, window_size, type)
    SELECT v_name, x.n, x.o, x.f, x.a, x.w, x.t
      FROM unnest(v_outs, v_funcs, v_args, v_wins, v_otypes) WITH ORDINALITY AS x(o, f, a, w, t, n);
    -- counters left under this id (ids start again after DROP EXTENSION)
    PERFORM fstore._forget_view(v_id);
END
$fn$;

CREATE FUNCTION @extschema@.fs_drop_aggregation_view(name text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name text := $1;
    v_users text;
    v_id   bigint;
BEGIN
    PERFORM fstore._lock_catalog();
    IF NOT EXISTS (SELECT 1 FROM fstore.aggregation_views a WHERE a.name = v_name) THEN
        RAISE EXCEPTION 'aggregation view "%" does not exist', v_name
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT string_agg(DISTINCT sa.service, ', ') INTO v_users
      FROM fstore.service_aggregations sa WHERE sa.view_name = v_name;
    IF v_users IS NOT NULL THEN
        RAISE EXCEPTION 'cannot drop aggregation view "%" because other objects depend on it', v_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Feature services using it: %s.', v_users),
                  HINT = 'Drop the feature services first.';
    END IF;
    EXECUTE format('DROP VIEW IF EXISTS fstore_online.%I', v_name);
    EXECUTE format('DROP TABLE IF EXISTS fstore_offline.%I', v_name);
    EXECUTE format('DROP TABLE IF EXISTS fstore_stream.%I', v_name);
    DELETE FROM fstore.materialization_runs m WHERE m.view_name = v_name;
    DELETE FROM fstore.dead_letters d WHERE d.view_name = v_name;
    DELETE FROM fstore.aggregation_views a WHERE a.name = v_name
    RETURNING a.view_id INTO v_id;
    PERFORM fstore._forget_view(v_id);
END
$fn$;

-- The aggregates of keys at a given time (fs_get_many reads at now()).
CREATE FUNCTION @extschema@.fs_get_many_at(row_type anyelement, keys "any", at timestamptz)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'fs_agg_get_many_at'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1000;

-- Removes the tiles of every key older than the longest window plus the
-- retention (writes remove those of the keys they touch); returns how many.
CREATE FUNCTION @extschema@.fs_compact_aggregation_view(name text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'fs_agg_compact'
LANGUAGE C VOLATILE;

-- True when a feature reference names an aggregation view.
CREATE FUNCTION fstore._agg_ref_view(p_ref text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT a.name FROM fstore.aggregation_views a
     WHERE a.name = (regexp_match(p_ref, '^\s*"?([a-z_][a-z0-9_]*)"?\s*\.'))[1];
$fn$;

CREATE FUNCTION fstore._agg_has_features(p_refs text[]) RETURNS bool
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT EXISTS (SELECT 1 FROM unnest(p_refs) r
                    WHERE fstore._agg_ref_view(r) IS NOT NULL
                       OR EXISTS (SELECT 1 FROM fstore.service_aggregations sa
                                   WHERE sa.service = regexp_replace(btrim(r), '\.\s*\*$', '')));
$fn$;

-- The features a reference brings from aggregation views, for services and
-- training sets: 'view.feature [AS alias]' or 'view.*' of an aggregation
-- view, or a feature service that has features of aggregation views (then
-- all its features, in order, those of feature views included).  No rows
-- for any other reference (fstore._resolve_features resolves those).
CREATE FUNCTION fstore._agg_resolve(p_ref text,
    OUT view_name text, OUT entity text, OUT feature name, OUT output_name name,
    OUT type text, OUT is_agg bool)
RETURNS SETOF record LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_view text := fstore._agg_ref_view(p_ref);
    v_svc  text;
    v_m    text[];
    r record;
BEGIN
    IF v_view IS NOT NULL THEN
        v_m := regexp_match(p_ref, '^\s*"?[a-z_][a-z0-9_]*"?\s*\.\s*("?)([^"\s]+)\1(?:\s+[aA][sS]\s+"?([a-z_][a-z0-9_]*)"?)?\s*$');
        IF v_m IS NULL OR (v_m[2] = '*' AND v_m[3] IS NOT NULL) THEN
            RAISE EXCEPTION 'invalid feature reference "%"', p_ref
                USING ERRCODE = 'invalid_name',
                      HINT = 'Write view.feature, view.feature AS alias, view.*, or the name of a feature service.';
        END IF;
        FOR r IN SELECT g.name, g.type, a.entity FROM fstore.aggregations g
                   JOIN fstore.aggregation_views a ON a.name = g.view_name
                  WHERE g.view_name = v_view AND (v_m[2] = '*' OR g.name = v_m[2])
                  ORDER BY g.position LOOP
            view_name := v_view; entity := r.entity; feature := r.name;
            output_name := coalesce(v_m[3], r.name); type := r.type; is_agg := true;
            RETURN NEXT;
        END LOOP;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'aggregation view "%" has no aggregation "%"', v_view, v_m[2]
                USING ERRCODE = 'undefined_column';
        END IF;
        RETURN;
    END IF;
    v_svc := regexp_replace(btrim(p_ref), '\.\s*\*$', '');
    IF NOT EXISTS (SELECT 1 FROM fstore.service_aggregations sa WHERE sa.service = v_svc) THEN
        RETURN;
    END IF;
    FOR r IN SELECT * FROM (
               SELECT sf.position AS p, sf.view_name AS v, fv.entity AS e, sf.feature AS f,
                      sf.output_name AS o, ft.type AS t, false AS g
                 FROM fstore.service_features sf
                 JOIN fstore.feature_views fv ON fv.name = sf.view_name
                 JOIN fstore.features ft ON ft.view_name = sf.view_name AND ft.name = sf.feature
                WHERE sf.service = v_svc
               UNION ALL
               SELECT sa.position, sa.view_name, a.entity, sa.feature, sa.output_name, g.type, true
                 FROM fstore.service_aggregations sa
                 JOIN fstore.aggregation_views a ON a.name = sa.view_name
                 JOIN fstore.aggregations g ON g.view_name = sa.view_name AND g.name = sa.feature
                WHERE sa.service = v_svc) x
             ORDER BY x.p LOOP
        view_name := r.v; entity := r.e; feature := r.f; output_name := r.o;
        type := r.t; is_agg := r.g;
        RETURN NEXT;
    END LOOP;
END
$fn$;

-- Every reference's features, those of aggregation views marked.
CREATE FUNCTION fstore._agg_resolve_all(p_refs text[],
    OUT pos int, OUT view_name text, OUT entity text, OUT feature name,
    OUT output_name name, OUT type text, OUT is_agg bool)
RETURNS SETOF record LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_ref text;
    n int := 0;
    r record;
BEGIN
    FOREACH v_ref IN ARRAY p_refs LOOP
        IF v_ref IS NULL THEN
            RAISE EXCEPTION 'feature reference must not be NULL'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF EXISTS (SELECT 1 FROM fstore._agg_resolve(v_ref)) THEN
            FOR r IN SELECT * FROM fstore._agg_resolve(v_ref) LOOP
                n := n + 1;
                pos := n; view_name := r.view_name; entity := r.entity; feature := r.feature;
                output_name := r.output_name; type := r.type; is_agg := r.is_agg;
                RETURN NEXT;
            END LOOP;
        ELSE
            FOR r IN SELECT f.*, ft.type FROM fstore._resolve_features(ARRAY[v_ref]) f
                       JOIN fstore.features ft ON ft.view_name = f.view_name AND ft.name = f.feature
                      ORDER BY f.pos LOOP
                n := n + 1;
                pos := n; view_name := r.view_name; entity := r.entity; feature := r.feature;
                output_name := r.output_name; type := r.type; is_agg := false;
                RETURN NEXT;
            END LOOP;
        END IF;
    END LOOP;
END
$fn$;

-- fs_training_set_query for features of aggregation views (and others):
-- each entity row gets the aggregates over the tiles with tile_start in
-- (event_ts - window, event_ts], as fs_get_many_at(..., event_ts) would.
CREATE FUNCTION fstore._agg_training_set_query(entity_query text, features text[],
    created_before timestamptz, strategy text)
RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres'
AS $fn$
DECLARE
    v_query   text;
    v_cols    name[];
    v_types   text[];
    v_plain   text[] := '{}';
    v_base    text;
    v_select  text := '';
    v_from    text := '';
    v_outs    name[] := '{}';
    v_views   text[] := '{}';
    v_ref     text;
    v_m       text[];
    v_view    text;
    v_feat    text;
    v_alias   text;
    v_av      record;
    v_keys    name[];
    v_ktypes  text[];
    v_pos     int;
    v_i       int;
    v_items   text[] := '{}';   -- output select items in order
    v_given   text[] := features;
    r record;
BEGIN
    IF entity_query IS NULL THEN
        RAISE EXCEPTION 'entity query must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF created_before IS NOT NULL THEN
        RAISE EXCEPTION 'created_before is not supported with features of aggregation views'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A tile is updated in place by every event of its key and interval, whenever the event arrives: it keeps no creation time and no earlier versions, so what it held at created_before cannot be recovered.',
                  HINT = 'Build the training set without created_before (the tiles as they are now), or keep the aggregation features in a separate training set.';
    END IF;
    v_query := fstore._check_select(entity_query);
    SELECT array_agg(c.colname ORDER BY c.n), array_agg(c.typesql ORDER BY c.n)
      INTO v_cols, v_types
      FROM fstore._query_columns(v_query) WITH ORDINALITY AS c(colname, typesql, n);
    IF v_cols IS NULL OR NOT ('event_ts' = ANY (v_cols)) THEN
        RAISE EXCEPTION 'entity query has no column "event_ts"'
            USING ERRCODE = 'undefined_column',
                  HINT = 'Select the time of each row as event_ts.';
    END IF;
    IF v_types[array_position(v_cols, 'event_ts')]
       NOT IN ('timestamp with time zone', 'timestamp without time zone', 'date') THEN
        RAISE EXCEPTION 'column "event_ts" of the entity query has type %', v_types[array_position(v_cols, 'event_ts')]
            USING ERRCODE = 'datatype_mismatch';
    END IF;

    -- a feature service with features of aggregation views: its features,
    -- one reference each (its derived features are added at the end)
    IF features IS NULL OR cardinality(features) = 0 THEN
        RAISE EXCEPTION 'a training set needs at least one feature'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    features := '{}';
    FOREACH v_ref IN ARRAY v_given LOOP
        IF v_ref IS NOT NULL AND fstore._agg_ref_view(v_ref) IS NULL
           AND EXISTS (SELECT 1 FROM fstore._agg_resolve(v_ref)) THEN
            features := features || ARRAY(SELECT format('%I.%I AS %I', x.view_name, x.feature, x.output_name)
                                            FROM fstore._agg_resolve(v_ref) WITH ORDINALITY AS x
                                           ORDER BY x.ordinality);
        ELSE
            features := features || v_ref;
        END IF;
    END LOOP;

    -- the ordinary features go to fs_training_set_query: its output is the base
    FOREACH v_ref IN ARRAY features LOOP
        IF v_ref IS NULL THEN
            RAISE EXCEPTION 'feature reference must not be NULL'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF fstore._agg_ref_view(v_ref) IS NULL THEN
            v_plain := v_plain || v_ref;
        END IF;
    END LOOP;
    IF cardinality(v_plain) > 0 THEN
        v_base := @extschema@.fs_training_set_query(entity_query, v_plain, NULL, strategy);
        SELECT array_agg(c.colname ORDER BY c.n) INTO v_outs
          FROM fstore._query_columns(v_base) WITH ORDINALITY AS c(colname, typesql, n);
        v_outs := v_outs[cardinality(v_cols) + 1 :];
    ELSE
        v_base := v_query;
    END IF;

    v_i := 0;
    FOREACH v_ref IN ARRAY features LOOP
        v_view := fstore._agg_ref_view(v_ref);
        IF v_view IS NULL THEN
            v_i := v_i + 1;
            v_items := v_items || format('fs_e.%I', v_outs[v_i]);
            CONTINUE;
        END IF;
        v_m := regexp_match(v_ref, '^\s*"?[a-z_][a-z0-9_]*"?\s*\.\s*("?)([^"\s]+)\1(?:\s+[aA][sS]\s+"?([a-z_][a-z0-9_]*)"?)?\s*$');
        IF v_m IS NULL THEN
            RAISE EXCEPTION 'invalid feature reference "%"', v_ref
                USING ERRCODE = 'invalid_name';
        END IF;
        SELECT * INTO v_av FROM fstore.aggregation_views a WHERE a.name = v_view;
        IF NOT (v_view = ANY (v_views)) THEN
            v_views := v_views || v_view;
            SELECT e.key_columns, e.key_types INTO v_keys, v_ktypes
              FROM fstore.entities e WHERE e.name = v_av.entity;
            FOR r IN SELECT k, t FROM unnest(v_keys, v_ktypes) AS x(k, t) LOOP
                v_pos := array_position(v_cols, r.k);
                IF v_pos IS NULL THEN
                    RAISE EXCEPTION 'entity query has no column "%", a key of aggregation view "%"', r.k, v_view
                        USING ERRCODE = 'undefined_column';
                END IF;
                IF v_types[v_pos]::regtype <> r.t::regtype THEN
                    RAISE EXCEPTION 'column "%" of the entity query has type %, but the key of aggregation view "%" has type %',
                                    r.k, v_types[v_pos], v_view, r.t
                        USING ERRCODE = 'datatype_mismatch',
                              HINT = format('Cast it in the entity query: %I::%s.', r.k, r.t);
                END IF;
            END LOOP;
            v_from := v_from || format(E'\n  LEFT JOIN LATERAL (\n    SELECT %s\n      FROM fstore_offline.%I fs_t\n     WHERE %s AND fs_t.tile_start OPERATOR(pg_catalog.>) ($T OPERATOR(pg_catalog.-) %s) AND fs_t.tile_start OPERATOR(pg_catalog.<=) $T) fs_a%s ON %s',
                replace(replace(v_av.aggs_sql, '$T', 'CAST(fs_e.event_ts AS pg_catalog.timestamptz)'), '$K', 'fs_e'),
                v_view,
                (SELECT string_agg(format('fs_t.%1$I %2$s fs_e.%1$I', k, fstore._eq_operator(t::regtype)), ' AND ')
                   FROM unnest(v_keys, v_ktypes) AS x(k, t)),
                fstore._agg_secs(fstore._agg_seconds(v_av.max_window)),
                array_position(v_views, v_view),
                (SELECT string_agg(format('fs_e.%I IS NOT NULL', k), ' AND ') FROM unnest(v_keys) AS x(k))
                  || ' AND fs_e.event_ts IS NOT NULL');
            v_from := replace(v_from, '$T', 'CAST(fs_e.event_ts AS pg_catalog.timestamptz)');
        END IF;
        IF v_m[2] = '*' THEN
            FOR r IN SELECT g.name FROM fstore.aggregations g WHERE g.view_name = v_view ORDER BY g.position LOOP
                v_items := v_items || format('fs_a%s.%I', array_position(v_views, v_view), r.name);
            END LOOP;
        ELSE
            v_feat := v_m[2];
            IF NOT EXISTS (SELECT 1 FROM fstore.aggregations g WHERE g.view_name = v_view AND g.name = v_feat) THEN
                RAISE EXCEPTION 'aggregation view "%" has no aggregation "%"', v_view, v_feat
                    USING ERRCODE = 'undefined_column';
            END IF;
            v_alias := coalesce(v_m[3], v_feat);
            v_items := v_items || format('fs_a%s.%I AS %I', array_position(v_views, v_view), v_feat, v_alias);
        END IF;
    END LOOP;

    v_select := (SELECT string_agg('fs_e.' || quote_ident(c), ', ' ORDER BY n)
                   FROM unnest(v_cols) WITH ORDINALITY AS x(c, n));
    RETURN fstore._with_derived(v_given,
        format(E'SELECT %s, %s\n  FROM (SELECT pg_catalog.row_number() OVER () AS fs_arow, fs_q.*\n          FROM (\n%s\n) AS fs_q) AS fs_e%s\n ORDER BY fs_e.fs_arow',
               v_select, array_to_string(v_items, ', '), v_base, v_from));
END
$fn$;

REVOKE ALL ON FUNCTION fstore._agg_refuse(text, int, timestamptz), fstore._agg_secs(bigint),
    fstore._agg_seconds(interval), fstore._agg_ref_view(text), fstore._agg_has_features(text[]),
    fstore._agg_training_set_query(text, text[], timestamptz, text),
    fstore._agg_resolve(text), fstore._agg_resolve_all(text[]),
    fstore._agg_enqueued() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fstore._agg_enqueued(),
    fstore._agg_refuse(text, int, timestamptz),
    fstore._agg_ref_view(text), fstore._agg_has_features(text[]),
    fstore._agg_training_set_query(text, text[], timestamptz, text),
    fstore._agg_resolve(text), fstore._agg_resolve_all(text[]),
    fstore._agg_secs(bigint), fstore._agg_seconds(interval)
    TO PUBLIC;
-- fstore.stats and fstore.freshness, over feature views and aggregation
-- views (defined here, after both): counters kept under the view's id
-- (for aggregation views by src/aggregate/aggregate.c: reads count lookups
-- and keys, never cache hits or misses, since aggregates are not cached),
-- the writers' state in shared memory and in fstore.view_state /
-- fstore.aggregation_state, the freshness target in fstore.feature_views
-- and fstore.aggregation_views.
CREATE VIEW fstore.stats AS
-- Counters live in shared memory: a view nothing has touched since the
-- server started has no entry there yet, and reads 0, not NULL.  Without
-- shared_preload_libraries there are no counters at all: NULL.
SELECT v.name AS view_name,
       COALESCE(s.lookups, z.zero) AS lookups,
       COALESCE(s.keys_requested, z.zero) AS keys_requested,
       COALESCE(s.cache_hits, z.zero) AS cache_hits,
       COALESCE(s.cache_misses, z.zero) AS cache_misses,
       COALESCE(s.evictions, z.zero) AS evictions,
       COALESCE(s.rows_written, z.zero) AS rows_written,
       COALESCE(s.rows_unchanged, z.zero) AS rows_unchanged,
       COALESCE(s.rows_late, z.zero) AS rows_late,
       COALESCE(s.stream_applied, z.zero) AS stream_applied,
       q.depth AS queue_depth,
       COALESCE(s.stream_batches, z.zero) AS stream_batches,
       COALESCE(s.dead_letters, z.zero) AS dead_letters
  FROM (SELECT fv.name, fv.view_id FROM fstore.feature_views fv
        UNION ALL
        SELECT av.name, av.view_id FROM fstore.aggregation_views av) v
  CROSS JOIN (SELECT CASE WHEN st.preloaded THEN 0::bigint END AS zero
                FROM fstore._stream_state() st) z
  LEFT JOIN fstore._stats() s ON s.view_id OPERATOR(pg_catalog.=) v.view_id
  LEFT JOIN LATERAL fstore._queue_state(v.name) q ON true;

GRANT SELECT ON fstore.stats TO PUBLIC;

-- What the writers of this database's views committed since the server
-- started (shared memory, src/stats/freshness.c; empty unless preloaded):
-- newer than the rows of fstore.view_state and fstore.aggregation_state
-- by up to about a second of writes.
CREATE FUNCTION fstore._freshness(OUT view_id bigint, OUT last_event_ts timestamptz,
    OUT last_write_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'fs_freshness'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW fstore.freshness AS
SELECT v.name AS view_name,
       s.last_event_ts,
       s.last_write_at AS last_write,
       r.finished_at AS last_materialization,
       nullif(v.watermark, '-infinity') AS watermark,
       -- times are finite (fstore refuses others), but a queue may hold
       -- an infinite event_ts until it is dead-lettered: never overflow
       CASE WHEN isfinite(s.last_event_ts) THEN now() - s.last_event_ts END AS lag,
       v.ttl,
       v.freshness_target,
       v.freshness_target IS NOT NULL
         AND (s.last_event_ts IS NULL OR NOT isfinite(s.last_event_ts)
              OR now() - s.last_event_ts > v.freshness_target) AS stale,
       q.depth AS queue_depth,
       CASE WHEN isfinite(q.oldest) THEN now() - q.oldest END AS queue_lag,
       w.workers AS stream_workers,
       -- events wait and no worker takes them: none can be started (no
       -- background worker slot), fstore is not preloaded, or none came
       -- within 10 seconds of the first commit that asked for one
       coalesce(q.depth > 0 AND w.workers = 0
                AND (NOT w.preloaded OR w.launch_failed_at IS NOT NULL
                     OR w.wanted_since < now() - interval '10 seconds'), false) AS queue_stalled,
       -- the newest failed fs_materialize run of this view (not of an
       -- earlier view of the same name), and whether it is the newest run
       lf.finished_at AS last_failure,
       lf.sqlstate || ': ' || lf.error AS last_error,
       coalesce(lf.finished_at > r.finished_at OR (lf.finished_at IS NOT NULL AND r.finished_at IS NULL),
                false) AS failing
  FROM (SELECT fv.view_id, fv.name, fv.ttl, fv.freshness_target, fv.created_at,
               vs.watermark, vs.last_event_ts, vs.last_write_at
          FROM fstore.feature_views fv
          LEFT JOIN fstore.view_state vs ON vs.view_id = fv.view_id
        UNION ALL
        SELECT av.view_id, av.name, NULL::interval, av.freshness_target, av.created_at,
               av.watermark, ast.last_event_ts, ast.last_write_at
          FROM fstore.aggregation_views av
          LEFT JOIN fstore.aggregation_state ast ON ast.view_id = av.view_id) v
  CROSS JOIN fstore._stream_state() w
  -- the later of the row and what shared memory holds
  LEFT JOIN fstore._freshness() m ON m.view_id OPERATOR(pg_catalog.=) v.view_id
  CROSS JOIN LATERAL (SELECT GREATEST(v.last_event_ts, m.last_event_ts) AS last_event_ts,
                             GREATEST(v.last_write_at, m.last_write_at) AS last_write_at) s
  LEFT JOIN LATERAL (SELECT max(m.finished_at) AS finished_at
                       FROM fstore.materialization_runs m
                      WHERE m.view_name = v.name AND m.status = 'succeeded') r ON true
  LEFT JOIN LATERAL (SELECT m.finished_at, m.error, m.sqlstate
                       FROM fstore.materialization_runs m
                      WHERE m.view_name = v.name AND m.status = 'failed'
                        AND m.started_at >= v.created_at
                      ORDER BY m.finished_at DESC, m.run_id DESC LIMIT 1) lf ON true
  LEFT JOIN LATERAL fstore._queue_state(v.name) q ON true;

GRANT SELECT ON fstore.freshness TO PUBLIC;

-- The views that are stale, whose queued events no worker takes, or whose
-- last materialization failed: for alerting from cron or a monitor.
CREATE FUNCTION @extschema@.fs_check_freshness()
RETURNS TABLE (view_name text, last_event_ts timestamptz, lag interval,
               freshness_target interval, problem text, last_error text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT f.view_name, f.last_event_ts, f.lag, f.freshness_target,
           concat_ws(', ', CASE WHEN f.stale THEN 'stale' END,
                           CASE WHEN f.queue_stalled THEN 'queue stalled' END,
                           CASE WHEN f.failing THEN 'materialization failed' END),
           CASE WHEN f.failing THEN f.last_error END
      FROM fstore.freshness f WHERE f.stale OR f.queue_stalled OR f.failing
     ORDER BY f.view_name;
$fn$;

-- ===========================================================================
-- end of aggregation views
-- ===========================================================================
-- ---------------------------------------------------------------------------
-- Sharding: feature views spread by entity key over several servers
-- (docs/scale-out.md).  Each shard is a PostgreSQL server with fstore,
-- reached through a postgres_fdw foreign server of the same name (its user
-- mappings give the credentials) and dblink.  A sharded view is an ordinary
-- view on every shard; on the coordinator its history and queue tables are
-- hash-partitioned by the key with foreign partitions, fstore_shard.<view>
-- is the partitioned online table, and fstore_online.<view> stays empty
-- (it gives the row type): fs_get_many, fs_write, fs_write_query and
-- fs_materialize send the keys and rows to the shards (src/shard/shard.c).
-- ---------------------------------------------------------------------------

CREATE SCHEMA fstore_shard;
GRANT USAGE ON SCHEMA fstore_shard TO PUBLIC;

CREATE TABLE fstore.shards (
    name          text PRIMARY KEY,   -- also the name of its foreign server
    fstore_schema name NOT NULL,      -- where fstore's functions are on the shard
    added_at      timestamptz NOT NULL DEFAULT now()
);

-- shards[i] holds the keys whose partition hash has remainder i - 1
-- modulo cardinality(shards), as the partitions of the tables say.
CREATE TABLE fstore.sharded_views (
    view_name  text PRIMARY KEY REFERENCES fstore.feature_views (name) ON DELETE CASCADE,
    shards     text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Whether each shard holds its part of a sharded view (fs_shard_sync).
CREATE TABLE fstore.shard_views (
    view_name  text NOT NULL REFERENCES fstore.sharded_views (view_name) ON DELETE CASCADE,
    shard      text NOT NULL REFERENCES fstore.shards (name),
    remainder  int NOT NULL,
    state      text NOT NULL CHECK (state IN ('pending', 'ready', 'failed')),
    error      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (view_name, shard)
);

SELECT pg_catalog.pg_extension_config_dump('fstore.shards', '');
SELECT pg_catalog.pg_extension_config_dump('fstore.sharded_views', '');
SELECT pg_catalog.pg_extension_config_dump('fstore.shard_views', '');
GRANT SELECT ON fstore.shards, fstore.sharded_views, fstore.shard_views TO PUBLIC;

-- The schema of an installed extension, quoted, or an error naming it.
CREATE FUNCTION fstore._shard_ext_schema(p_ext name) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v text;
BEGIN
    SELECT pg_catalog.quote_ident(n.nspname) INTO v
      FROM pg_catalog.pg_extension e
      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
     WHERE e.extname OPERATOR(pg_catalog.=) p_ext;
    IF v IS NULL THEN
        RAISE EXCEPTION 'extension "%" is not installed', p_ext
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Sharded feature views reach their shards through postgres_fdw and dblink.',
                  HINT = pg_catalog.format('CREATE EXTENSION %I;', p_ext);
    END IF;
    RETURN v;
END
$fn$;

CREATE FUNCTION fstore._shard_require_superuser(p_what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r
             WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
        RAISE EXCEPTION 'permission denied to %', p_what
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Shards and sharded views are defined by a superuser: they create foreign servers and tables.';
    END IF;
END
$fn$;

-- The dblink connection of this session and role to a shard, opened with
-- the role's user mapping of the shard's foreign server when missing (or
-- when reconnect is true).  An unreachable shard is error 08006 naming it.
CREATE FUNCTION fstore._shard_conn(p_shard text, p_reconnect bool DEFAULT false)
RETURNS text LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_dblink text := fstore._shard_ext_schema('dblink');
    v_conn   text := pg_catalog.format('fstore_%s_%s', p_shard,
                                       (SELECT r.oid FROM pg_catalog.pg_roles r
                                         WHERE r.rolname OPERATOR(pg_catalog.=) current_user));
    v_have   bool;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM fstore.shards s WHERE s.name OPERATOR(pg_catalog.=) p_shard) THEN
        RAISE EXCEPTION 'shard "%" does not exist', p_shard
            USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE pg_catalog.format('SELECT $1 OPERATOR(pg_catalog.=) ANY (%s.dblink_get_connections())', v_dblink)
       INTO v_have USING v_conn;
    IF v_have AND p_reconnect THEN
        EXECUTE pg_catalog.format('SELECT %s.dblink_disconnect($1)', v_dblink) USING v_conn;
        v_have := false;
    END IF;
    IF NOT coalesce(v_have, false) THEN
        BEGIN
            EXECUTE pg_catalog.format('SELECT %s.dblink_connect($1, $2)', v_dblink)
              USING v_conn, p_shard;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'shard "%" is unavailable', p_shard
                USING ERRCODE = 'connection_failure',
                      DETAIL = SQLERRM,
                      HINT = 'Check that the shard''s server is running and reachable with this role''s user mapping.';
        END;
    END IF;
    RETURN v_conn;
END
$fn$;

-- Runs a query returning one text column on a shard (synchronously).
CREATE FUNCTION fstore._shard_query(p_shard text, p_sql text) RETURNS SETOF text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_conn text := fstore._shard_conn(p_shard);
BEGIN
    RETURN QUERY EXECUTE pg_catalog.format('SELECT t.v FROM %s.dblink($1, $2) AS t(v text)',
                                           fstore._shard_ext_schema('dblink'))
        USING v_conn, p_sql;
END
$fn$;

CREATE FUNCTION @extschema@.fs_add_shard(name text, conninfo text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_name  text := fstore._check_name($1, 'shard', 40);
    v_srv   text[] := '{}';
    v_user  text[] := '{}';
    v_fdw   text;
    v_schema text;
    m       text[];
BEGIN
    PERFORM fstore._shard_require_superuser('add a shard');
    PERFORM fstore._shard_ext_schema('postgres_fdw');
    PERFORM fstore._shard_ext_schema('dblink');
    IF EXISTS (SELECT 1 FROM fstore.shards s WHERE s.name OPERATOR(pg_catalog.=) v_name) THEN
        RAISE EXCEPTION 'shard "%" already exists', v_name
            USING ERRCODE = 'duplicate_object';
    END IF;
    IF conninfo IS NOT NULL THEN
        -- key=value pairs, values optionally in single quotes
        FOR m IN SELECT pg_catalog.regexp_matches(conninfo,
                     '([a-z_]+)\s*=\s*(''((?:[^''\\]|\\.)*)''|[^\s'']+)', 'g') LOOP
            IF m[1] IN ('user', 'password') THEN
                v_user := v_user || pg_catalog.format('%I %L', m[1],
                            coalesce(pg_catalog.regexp_replace(m[3], '\\(.)', '\1', 'g'), m[2]));
            ELSE
                v_srv := v_srv || pg_catalog.format('%I %L', m[1],
                            coalesce(pg_catalog.regexp_replace(m[3], '\\(.)', '\1', 'g'), m[2]));
            END IF;
        END LOOP;
        EXECUTE pg_catalog.format('CREATE SERVER %I FOREIGN DATA WRAPPER postgres_fdw OPTIONS (%s)',
                                  v_name, pg_catalog.array_to_string(v_srv || '"async_capable" ''true'''::text, ', '));
        EXECUTE pg_catalog.format('CREATE USER MAPPING FOR CURRENT_USER SERVER %I%s', v_name,
                                  CASE WHEN cardinality(v_user) = 0 THEN ''
                                       ELSE pg_catalog.format(' OPTIONS (%s)', pg_catalog.array_to_string(v_user, ', ')) END);
    ELSE
        SELECT w.fdwname INTO v_fdw
          FROM pg_catalog.pg_foreign_server s
          JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw
         WHERE s.srvname OPERATOR(pg_catalog.=) v_name;
        IF v_fdw IS NULL OR v_fdw <> 'postgres_fdw' THEN
            RAISE EXCEPTION 'foreign server "%" of postgres_fdw does not exist', v_name
                USING ERRCODE = 'undefined_object',
                      HINT = 'Pass conninfo, or create the server and its user mappings first.';
        END IF;
    END IF;
    INSERT INTO fstore.shards (name, fstore_schema) VALUES (v_name, '-');
    -- the shard must run fstore: where its functions are
    v_schema := (SELECT t FROM fstore._shard_query(v_name,
                   'SELECT n.nspname::text FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ''fstore''') t);
    IF v_schema IS NULL THEN
        RAISE EXCEPTION 'shard "%" has no fstore extension', v_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'CREATE EXTENSION fstore; in the shard''s database (with fstore in shared_preload_libraries).';
    END IF;
    UPDATE fstore.shards s SET fstore_schema = v_schema WHERE s.name OPERATOR(pg_catalog.=) v_name;
END
$fn$;

-- Creates the view (and its entity) on every shard of a sharded view that
-- does not hold it yet, each in one transaction of its own; records the
-- outcome in fstore.shard_views and returns it.  Safe to run again: the
-- documented retry after a failure.
CREATE FUNCTION @extschema@.fs_shard_sync(view text)
RETURNS TABLE (shard text, state text, error text) LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_view   text := $1;
    v_entity text;
    v_keys   text;
    v_kcols  text;
    v_feats  text;
    v_ttl    interval;
    v_fs     text;
    v_have   text;
    v_want   text;
    r record;
BEGIN
    PERFORM fstore._shard_require_superuser('synchronize shards');
    SELECT v.entity, v.ttl INTO v_entity, v_ttl FROM fstore.feature_views v
     WHERE v.name OPERATOR(pg_catalog.=) v_view;
    IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM fstore.sharded_views s
                                 WHERE s.view_name OPERATOR(pg_catalog.=) v_view) THEN
        RAISE EXCEPTION 'sharded feature view "%" does not exist', v_view
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', k, t), ', ' ORDER BY n),
           pg_catalog.string_agg(pg_catalog.format('%s %s', k, t), ', ' ORDER BY n)
      INTO v_keys, v_kcols
      FROM fstore.entities e, unnest(e.key_columns, e.key_types) WITH ORDINALITY AS x(k, t, n)
     WHERE e.name OPERATOR(pg_catalog.=) v_entity;
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', f.name, f.type), ', ' ORDER BY f.position)
      INTO v_feats FROM fstore.features f WHERE f.view_name OPERATOR(pg_catalog.=) v_view;
    v_want := pg_catalog.format('%s|%s|%s', v_kcols,
                (SELECT pg_catalog.string_agg(pg_catalog.format('%s %s', f.name, f.type), ', ' ORDER BY f.position)
                   FROM fstore.features f WHERE f.view_name OPERATOR(pg_catalog.=) v_view), v_ttl);

    FOR r IN SELECT sv.shard, sv.state, s.fstore_schema FROM fstore.shard_views sv
               JOIN fstore.shards s ON s.name OPERATOR(pg_catalog.=) sv.shard
              WHERE sv.view_name OPERATOR(pg_catalog.=) v_view ORDER BY sv.remainder LOOP
        v_fs := pg_catalog.quote_ident(r.fstore_schema);
        BEGIN
            -- what the shard holds under these names, if anything
            v_have := (SELECT t FROM fstore._shard_query(r.shard, pg_catalog.format(
                $q$SELECT (SELECT pg_catalog.string_agg(pg_catalog.format('%%s %%s', k, t), ', ' ORDER BY n)
                             FROM fstore.entities e, unnest(e.key_columns, e.key_types) WITH ORDINALITY AS x(k, t, n)
                            WHERE e.name = %1$L) || '|' ||
                          coalesce((SELECT pg_catalog.string_agg(pg_catalog.format('%%s %%s', f.name, f.type), ', ' ORDER BY f.position)
                             FROM fstore.features f WHERE f.view_name = %2$L), '') || '|' ||
                          coalesce((SELECT v.ttl::text FROM fstore.feature_views v WHERE v.name = %2$L), '') ||
                          CASE WHEN EXISTS (SELECT 1 FROM fstore.feature_views v WHERE v.name = %2$L) THEN '' ELSE '|none' END$q$,
                v_entity, v_view)) t);
            IF v_have IS NULL THEN
                -- no entity: create both, in one transaction (one statement)
                PERFORM fstore._shard_query(r.shard, pg_catalog.format(
                    'SELECT %1$s.fs_create_entity(%2$L, %3$L)::text UNION ALL SELECT %1$s.fs_create_feature_view(%4$L, %2$L, features => %5$L, ttl => %6$L::interval)::text',
                    v_fs, v_entity, v_keys, v_view, v_feats, v_ttl));
            ELSIF v_have LIKE '%|none' THEN
                IF pg_catalog.split_part(v_have, '|', 1) <> v_kcols THEN
                    RAISE EXCEPTION 'entity "%" on shard "%" has other keys: %', v_entity, r.shard,
                        pg_catalog.split_part(v_have, '|', 1);
                END IF;
                PERFORM fstore._shard_query(r.shard, pg_catalog.format(
                    'SELECT %1$s.fs_create_feature_view(%2$L, %3$L, features => %4$L, ttl => %5$L::interval)::text',
                    v_fs, v_view, v_entity, v_feats, v_ttl));
            ELSIF v_have <> v_want THEN
                RAISE EXCEPTION 'feature view "%" on shard "%" has another definition', v_view, r.shard
                    USING DETAIL = pg_catalog.format('The shard has %s; the coordinator has %s.', v_have, v_want);
            END IF;
            UPDATE fstore.shard_views sv SET state = 'ready', error = NULL, updated_at = now()
             WHERE sv.view_name OPERATOR(pg_catalog.=) v_view AND sv.shard OPERATOR(pg_catalog.=) r.shard;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'feature view "%" could not be created on shard "%"', v_view, r.shard
                USING DETAIL = SQLERRM,
                      HINT = pg_catalog.format('Fix the shard, then run SELECT * FROM fs_shard_sync(%L);', v_view);
            UPDATE fstore.shard_views sv SET state = 'failed', error = SQLERRM, updated_at = now()
             WHERE sv.view_name OPERATOR(pg_catalog.=) v_view AND sv.shard OPERATOR(pg_catalog.=) r.shard;
        END;
    END LOOP;
    RETURN QUERY SELECT sv.shard, sv.state, sv.error FROM fstore.shard_views sv
                  WHERE sv.view_name OPERATOR(pg_catalog.=) v_view ORDER BY sv.remainder;
END
$fn$;

-- Statement trigger on the (always empty) coordinator online table of a
-- sharded view: its rows live on the shards.
CREATE FUNCTION fstore._shard_refuse_dml() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RAISE EXCEPTION 'feature view "%" is sharded', TG_TABLE_NAME
        USING ERRCODE = 'wrong_object_type',
              DETAIL = 'Its online rows live on its shards; this table only gives its row type.',
              HINT = pg_catalog.format('Write with fs_write or fs_write_query, or to fstore_shard.%I.', TG_TABLE_NAME);
END
$fn$;

-- Makes an empty feature view sharded over the given shards (default:
-- every shard): its entity and view are created on each shard, and its
-- tables on the coordinator become partitioned with foreign partitions.
CREATE FUNCTION @extschema@.fs_shard_feature_view(view text, shards text[] DEFAULT NULL)
RETURNS TABLE (shard text, state text, error text) LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_view   text := $1;
    v_shards text[] := $2;
    v_entity text;
    v_owner  name;
    v_keydefs text;
    v_keydefs_nn text;
    v_keylist text;
    v_fdefs  text;
    v_n      int;
    v_part   text;
    v_pg     text;
    i int;
BEGIN
    PERFORM fstore._shard_require_superuser('shard a feature view');
    PERFORM fstore._shard_ext_schema('postgres_fdw');
    PERFORM fstore._lock_catalog();
    SELECT v.entity INTO v_entity FROM fstore.feature_views v WHERE v.name OPERATOR(pg_catalog.=) v_view;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feature view "%" does not exist', v_view
            USING ERRCODE = 'undefined_object';
    END IF;
    IF EXISTS (SELECT 1 FROM fstore.sharded_views s WHERE s.view_name OPERATOR(pg_catalog.=) v_view) THEN
        RAISE EXCEPTION 'feature view "%" is already sharded', v_view
            USING ERRCODE = 'duplicate_object';
    END IF;
    IF v_shards IS NULL THEN
        SELECT pg_catalog.array_agg(s.name ORDER BY s.name) INTO v_shards FROM fstore.shards s;
    END IF;
    v_n := coalesce(cardinality(v_shards), 0);
    IF v_n = 0 THEN
        RAISE EXCEPTION 'feature view "%" needs at least one shard', v_view
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Add shards with fs_add_shard first.';
    END IF;
    FOR i IN 1 .. v_n LOOP
        IF v_shards[i] IS NULL OR NOT EXISTS (SELECT 1 FROM fstore.shards s WHERE s.name OPERATOR(pg_catalog.=) v_shards[i]) THEN
            RAISE EXCEPTION 'shard "%" does not exist', v_shards[i]
                USING ERRCODE = 'undefined_object';
        END IF;
        IF v_shards[i] = ANY (v_shards[1:i - 1]) THEN
            RAISE EXCEPTION 'shard "%" is listed more than once', v_shards[i]
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF octet_length(v_view) + octet_length(v_shards[i]) > 54 THEN
            RAISE EXCEPTION 'the names of feature view "%" and shard "%" are too long together', v_view, v_shards[i]
                USING ERRCODE = 'name_too_long',
                      DETAIL = 'Their partitions are named view@shard.offline, at most 63 bytes.';
        END IF;
    END LOOP;
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM fstore_online.%1$I) OR EXISTS (SELECT 1 FROM fstore_offline.%1$I) OR EXISTS (SELECT 1 FROM fstore_stream.%1$I)', v_view)
       INTO STRICT v_part;
    IF v_part::bool THEN
        RAISE EXCEPTION 'feature view "%" holds rows', v_view
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Only an empty feature view can be sharded.',
                  HINT = 'Shard it right after creating it, then load it through the coordinator (docs/scale-out.md, "Moving data").';
    END IF;

    SELECT pg_catalog.pg_get_userbyid(c.relowner) INTO v_owner FROM pg_catalog.pg_class c
     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.format('fstore_online.%I', v_view)::regclass;
    v_keydefs := fstore._key_defs(v_entity);
    v_keydefs_nn := fstore._key_defs(v_entity, true);
    v_keylist := fstore._key_list(v_entity);
    SELECT pg_catalog.string_agg(pg_catalog.format(', %I %s', f.name, f.type), '' ORDER BY f.position)
      INTO v_fdefs FROM fstore.features f WHERE f.view_name OPERATOR(pg_catalog.=) v_view;

    -- history and queue: hash-partitioned by the key, one foreign partition a shard
    EXECUTE pg_catalog.format('DROP TABLE fstore_offline.%I', v_view);
    EXECUTE pg_catalog.format('CREATE TABLE fstore_offline.%I (%s, event_ts timestamptz NOT NULL%s, created_at timestamptz NOT NULL DEFAULT now()) PARTITION BY HASH (%s)',
                              v_view, v_keydefs_nn, v_fdefs, v_keylist);
    EXECUTE pg_catalog.format('DROP TABLE fstore_stream.%I', v_view);
    EXECUTE pg_catalog.format('CREATE TABLE fstore_stream.%I (%s%s, event_ts timestamptz) PARTITION BY HASH (%s)',
                              v_view, v_keydefs, v_fdefs, v_keylist);
    EXECUTE pg_catalog.format('DROP TABLE IF EXISTS fstore_shard.%I', v_view);
    EXECUTE pg_catalog.format('CREATE TABLE fstore_shard.%I (%s%s, event_ts timestamptz NOT NULL) PARTITION BY HASH (%s)',
                              v_view, v_keydefs_nn, v_fdefs, v_keylist);
    FOR i IN 1 .. v_n LOOP
        FOREACH v_pg IN ARRAY ARRAY['online', 'offline', 'stream'] LOOP
            v_part := CASE v_pg WHEN 'online' THEN v_view || '@' || v_shards[i]
                                ELSE v_view || '@' || v_shards[i] || '.' || v_pg END;
            EXECUTE pg_catalog.format('CREATE FOREIGN TABLE fstore_shard.%I PARTITION OF %s.%I FOR VALUES WITH (MODULUS %s, REMAINDER %s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
                                      v_part, CASE v_pg WHEN 'online' THEN 'fstore_shard' ELSE 'fstore_' || v_pg END,
                                      v_view, v_n, i - 1, v_shards[i], 'fstore_' || v_pg, v_view);
            EXECUTE pg_catalog.format('ALTER FOREIGN TABLE fstore_shard.%I OWNER TO %I', v_part, v_owner);
        END LOOP;
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE fstore_offline.%I OWNER TO %I', v_view, v_owner);
    EXECUTE pg_catalog.format('ALTER TABLE fstore_stream.%I OWNER TO %I', v_view, v_owner);
    EXECUTE pg_catalog.format('ALTER TABLE fstore_shard.%I OWNER TO %I', v_view, v_owner);
    EXECUTE pg_catalog.format('CREATE TRIGGER fstore_sharded BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON fstore_online.%I FOR EACH STATEMENT EXECUTE FUNCTION fstore._shard_refuse_dml()',
                              v_view);
    EXECUTE pg_catalog.format('ALTER TABLE fstore_online.%I ENABLE ALWAYS TRIGGER fstore_sharded', v_view);

    INSERT INTO fstore.sharded_views (view_name, shards) VALUES (v_view, v_shards);
    INSERT INTO fstore.shard_views (view_name, shard, remainder, state)
    SELECT v_view, s, n::int - 1, 'pending' FROM unnest(v_shards) WITH ORDINALITY AS x(s, n);
    -- the coordinator's metadata of the view changed with its tables
    UPDATE fstore.feature_views v SET name = v.name WHERE v.name OPERATOR(pg_catalog.=) v_view;
    RETURN QUERY SELECT * FROM @extschema@.fs_shard_sync(v_view);
END
$fn$;

-- fs_create_feature_view and fs_shard_feature_view in one call: a view
-- created with shards => ... (every shard when shards is NULL).
CREATE FUNCTION @extschema@.fs_create_sharded_feature_view(
    name text,
    entity text,
    features text DEFAULT NULL,
    source regclass DEFAULT NULL,
    timestamp_column name DEFAULT 'event_ts',
    ttl interval DEFAULT NULL,
    source_query text DEFAULT NULL,
    shards text[] DEFAULT NULL)
RETURNS TABLE (shard text, state text, error text) LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM fstore._shard_require_superuser('create a sharded feature view');
    PERFORM @extschema@.fs_create_feature_view($1, $2, features => $3, source => $4,
        timestamp_column => $5, ttl => $6, source_query => $7);
    RETURN QUERY SELECT * FROM @extschema@.fs_shard_feature_view($1, $8);
END
$fn$;

-- Drops a sharded view on the coordinator and, with on_shards, on every
-- shard (each in a transaction of its own).
CREATE FUNCTION @extschema@.fs_drop_sharded_feature_view(view text, on_shards bool DEFAULT false)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_view text := $1;
    v_shards text[];
    v_s text;
BEGIN
    PERFORM fstore._shard_require_superuser('drop a sharded feature view');
    SELECT s.shards INTO v_shards FROM fstore.sharded_views s WHERE s.view_name OPERATOR(pg_catalog.=) v_view;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'sharded feature view "%" does not exist', v_view
            USING ERRCODE = 'undefined_object';
    END IF;
    EXECUTE pg_catalog.format('DROP TABLE IF EXISTS fstore_shard.%I', v_view);
    PERFORM @extschema@.fs_drop_feature_view(v_view);
    IF on_shards THEN
        FOREACH v_s IN ARRAY v_shards LOOP
            PERFORM fstore._shard_query(v_s, pg_catalog.format('SELECT %s.fs_drop_feature_view(%L)::text',
                (SELECT pg_catalog.quote_ident(s.fstore_schema) FROM fstore.shards s WHERE s.name OPERATOR(pg_catalog.=) v_s), v_view));
        END LOOP;
    END IF;
END
$fn$;

-- The reads and writes of any role connect to the shards with
-- fstore._shard_conn (with the role's own user mapping); the rest is for
-- the superusers who define shards.
REVOKE ALL ON FUNCTION fstore._shard_query(text, text),
    fstore._shard_require_superuser(text) FROM PUBLIC;

-- Monitoring across shards: per shard of every sharded view, whether it is
-- reachable and what its fstore.freshness and fstore.stats say.
CREATE FUNCTION @extschema@.fs_shard_status()
RETURNS TABLE (view_name text, shard text, state text, reachable bool,
               online_rows bigint, queue_depth bigint, last_event_ts timestamptz,
               lookups bigint, cache_hits bigint, error text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    r record;
    v text;
BEGIN
    FOR r IN SELECT sv.view_name, sv.shard, sv.state, s.fstore_schema
               FROM fstore.shard_views sv JOIN fstore.shards s ON s.name OPERATOR(pg_catalog.=) sv.shard
              ORDER BY sv.view_name, sv.remainder LOOP
        view_name := r.view_name; shard := r.shard; state := r.state;
        reachable := false; online_rows := NULL; queue_depth := NULL;
        last_event_ts := NULL; lookups := NULL; cache_hits := NULL; error := NULL;
        BEGIN
            v := (SELECT t FROM fstore._shard_query(r.shard, pg_catalog.format(
                $q$SELECT pg_catalog.concat_ws('|',
                      (SELECT pg_catalog.count(*) FROM fstore_online.%1$I),
                      coalesce((SELECT f.queue_depth::text FROM fstore.freshness f WHERE f.view_name = %2$L), ''),
                      coalesce((SELECT f.last_event_ts::text FROM fstore.freshness f WHERE f.view_name = %2$L), ''),
                      coalesce((SELECT s.lookups::text FROM fstore.stats s WHERE s.view_name = %2$L), ''),
                      coalesce((SELECT s.cache_hits::text FROM fstore.stats s WHERE s.view_name = %2$L), ''))$q$,
                r.view_name, r.view_name)) t);
            reachable := true;
            online_rows := nullif(pg_catalog.split_part(v, '|', 1), '')::bigint;
            queue_depth := nullif(pg_catalog.split_part(v, '|', 2), '')::bigint;
            last_event_ts := nullif(pg_catalog.split_part(v, '|', 3), '')::timestamptz;
            lookups := nullif(pg_catalog.split_part(v, '|', 4), '')::bigint;
            cache_hits := nullif(pg_catalog.split_part(v, '|', 5), '')::bigint;
        EXCEPTION WHEN OTHERS THEN
            error := SQLERRM;
        END;
        RETURN NEXT;
    END LOOP;
END
$fn$;

-- ===========================================================================
-- Descriptions, for \df+, \dv+ and \dt+ (every overload of a function gets
-- the text of its name).  sql/01_catalog.sql checks that nothing public is
-- left without one.
-- ===========================================================================
DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT p.oid::pg_catalog.regprocedure AS fn, d.txt
          FROM (VALUES
                ('fs_create_entity', 'Defines an entity: a name and its key columns.'),
                ('fs_drop_entity', 'Drops an entity that no view or service uses.'),
                ('fs_create_feature_view', 'Defines a feature view: its features, its online, history and stream tables, and optionally a source to materialize from.'),
                ('fs_alter_feature_view', 'Changes a feature view in place: adds or drops features, sets or clears its ttl, renames it, changes its source; keeps the online values and the history.'),
                ('fs_drop_feature_view', 'Drops a feature view with its online, history and stream tables.'),
                ('fs_create_feature_service', 'Defines a feature service: a named selection of features from one or more views, with optional request-time derived features.'),
                ('fs_drop_feature_service', 'Drops a feature service and its row types.'),
                ('fs_get_many', 'Returns the online features of many keys (or service requests) in one call, in input order, from the shared cache where possible.'),
                ('fs_get_many_packed', 'Returns the same answer as fs_get_many as one bytea in the packed binary layout (docs/packed.md).'),
                ('fs_get_many_status', 'Returns, per request and view, whether the key was present, absent or expired by ttl, with the value''s event_ts.'),
                ('fs_get_many_at', 'Returns an aggregation view''s windowed aggregates as of a given time.'),
                ('fs_write', 'Upserts feature rows into a view''s online store and history, writing only values that changed and never letting a late event overwrite a newer one.'),
                ('fs_write_query', 'Upserts the rows of a query into a view, with the change detection of fs_write.'),
                ('fs_stream_apply', 'Drains a view''s stream queue into its online store and history now, in the caller''s transaction.'),
                ('fs_stream_wait', 'Waits until the stream workers have applied every event enqueued before the call, or the timeout passes.'),
                ('fs_materialize', 'Reads a view''s source incrementally (after its watermark, minus a lookback) and upserts the rows; records the run.'),
                ('fs_schedule_materialize', 'Schedules fs_materialize of a view with pg_cron.'),
                ('fs_unschedule_materialize', 'Removes the pg_cron schedule of a view.'),
                ('fs_training_set_query', 'Returns the SQL of a point-in-time-correct training-set join of an entity query with features.'),
                ('fs_create_training_set', 'Builds a training set table in fstore_training from an entity query and features, point in time correct.'),
                ('fs_drop_training_set', 'Drops a training set table and its catalog row.'),
                ('fs_reset_stats', 'Resets fstore''s shared-memory counters (superuser only by default).'),
                ('fs_set_freshness_target', 'Sets (or clears, with NULL) a view''s freshness target, checked by fstore.freshness and fs_check_freshness.'),
                ('fs_check_freshness', 'Lists the views that miss their freshness target, have a stalled queue or whose last materialization failed.'),
                ('fs_create_aggregation_view', 'Defines an aggregation view: raw events aggregated into tiles and served as sliding-window counts, sums, averages, minima, maxima and distinct counts.'),
                ('fs_drop_aggregation_view', 'Drops an aggregation view with its tiles and queue.'),
                ('fs_compact_aggregation_view', 'Removes the tiles of an aggregation view older than its longest window plus its retention.'),
                ('fs_add_shard', 'Registers a shard: a postgres_fdw server (created from a conninfo, or one you made) and the user mapping for the current role.'),
                ('fs_shard_sync', 'Creates (or checks) a sharded view''s entity and view on every shard that is not ready yet; safe to run again after a failure.'),
                ('fs_shard_feature_view', 'Spreads an empty feature view over shards by hash of its entity key.'),
                ('fs_create_sharded_feature_view', 'Creates a feature view and spreads it over shards by hash of its entity key in one call.'),
                ('fs_drop_sharded_feature_view', 'Drops a sharded feature view on the coordinator and on every shard.'),
                ('fs_shard_status', 'Lists every sharded view''s state on every shard, with the last error.'),
                ('as_of_join', 'Point-in-time join of an entity query with view history, used by fs_training_set_query with method => as_of.')
               ) AS d(name, txt)
          JOIN pg_catalog.pg_proc p ON p.proname OPERATOR(pg_catalog.=) d.name
         WHERE p.pronamespace OPERATOR(pg_catalog.=) ANY (ARRAY['@extschema@'::pg_catalog.regnamespace, 'fstore'::pg_catalog.regnamespace])
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s IS %L', r.fn, r.txt);
    END LOOP;
    FOR r IN
        SELECT c.oid::pg_catalog.regclass AS rel, c.relkind, d.txt
          FROM (VALUES
                ('entities', 'Catalog: entities and their key columns.'),
                ('feature_views', 'Catalog: feature views, their sources, ttl and freshness targets.'),
                ('features', 'Catalog: the features of each feature view, in order.'),
                ('feature_services', 'Catalog: feature services.'),
                ('service_features', 'Catalog: the features each service selects, with their output names.'),
                ('dead_letters', 'Stream events a worker could not apply, with the error.'),
                ('view_state', 'What the writers of each view last did: newest event_ts, last write, materialization watermark.'),
                ('training_sets', 'Catalog: training sets built by fs_create_training_set and how.'),
                ('materialization_runs', 'Every fs_materialize run, failed ones included, with counts, status and error.'),
                ('aggregation_views', 'Catalog: aggregation views, their events and granularity.'),
                ('aggregations', 'Catalog: the aggregates of each aggregation view.'),
                ('service_aggregations', 'Catalog: the features each service takes from aggregation views, with their output names.'),
                ('aggregation_state', 'What the writers of each aggregation view last did: newest event_ts added and time of the last write (read by fstore.freshness).'),
                ('stats', 'Per view counters: lookups, cache hits and misses, rows written, unchanged and late, stream and dead letters; zero after a restart.'),
                ('freshness', 'Per view freshness: last event and write, lag, target, staleness, queue state and the last materialization failure.'),
                ('cache_stats', 'The shared-memory cache: size, entries, hits, misses, evictions.'),
                ('shards', 'Catalog: the shards of this coordinator and where fstore lives on each.'),
                ('sharded_views', 'Catalog: sharded feature views and their shards in hash order.'),
                ('shard_views', 'Each sharded view''s state on each shard: pending, ready or failed, with the error.'),
                ('progress', 'Running fs_materialize calls, training-set builds and stream batches: phase and rows done.')
               ) AS d(name, txt)
          JOIN pg_catalog.pg_class c ON c.relname OPERATOR(pg_catalog.=) d.name
         WHERE c.relnamespace OPERATOR(pg_catalog.=) 'fstore'::pg_catalog.regnamespace
    LOOP
        EXECUTE pg_catalog.format('COMMENT ON %s %s IS %L',
                                  CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, r.rel, r.txt);
    END LOOP;
END
$do$;
