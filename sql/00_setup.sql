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
