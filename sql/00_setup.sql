-- Test helpers shared by the other files.
CREATE SCHEMA t;
GRANT USAGE ON SCHEMA t TO PUBLIC;

-- Runs a statement and returns its SQLSTATE and message ('ok' if none).
CREATE FUNCTION t.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text;
    msg text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN st || ': ' || msg;
END
$$;

SELECT t.err('SELECT 1/0');
SELECT t.err('SELECT 1');

-- Waits until this database's stream workers are gone (after ALTER SYSTEM
-- SET fstore.stream_workers = 0 and a reload), so that a test can drain
-- queues itself with fs_stream_apply; returns how many are left.
CREATE FUNCTION t.workers_gone() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 1000 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity
                               WHERE backend_type = 'fstore stream worker'
                                 AND datname = current_database());
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN (SELECT count(*) FROM pg_stat_activity
             WHERE backend_type = 'fstore stream worker' AND datname = current_database());
END
$$;
