-- Streaming ingestion: queue tables drained by the stream workers.
-- (Restarts, crashes and concurrent producers are in test/t/004_stream.pl.)
\set SHOW_CONTEXT never
SET timezone = 'UTC';

SELECT fs_create_feature_view('qv', 'item', 'n int, s text');
\d fstore_stream.qv

-- events are applied by a worker exactly as fs_write would apply them
INSERT INTO fstore_stream.qv VALUES (1, 1, 'a', '2026-01-01'), (1, 2, 'b', '2026-01-02'),
                                    (2, 5, 'x', '2026-01-01');
SELECT fs_stream_wait('qv');
SELECT * FROM fstore_online.qv ORDER BY 1;
SELECT item_id, n, s, event_ts FROM fstore_offline.qv ORDER BY 1, 4;
-- unchanged and late events too
INSERT INTO fstore_stream.qv VALUES (1, 2, 'b', '2026-01-03'), (1, 9, 'late', '2025-12-31');
SELECT fs_stream_wait('qv');
SELECT item_id, n, s, event_ts FROM fstore_offline.qv WHERE item_id = 1 ORDER BY event_ts;
SELECT item_id, n, event_ts FROM fstore_online.qv WHERE item_id = 1;
-- COPY, from any client, is a producer too
COPY fstore_stream.qv FROM stdin;
3	3	c	2026-01-01 00:00:00+00
4	\N	d	2026-01-01 00:00:00+00
\.
SELECT fs_stream_wait('qv');
SELECT * FROM fs_get_many(NULL::fstore_online.qv, ARRAY[1, 2, 3, 4]::bigint[]);

-- an aborted insert is never applied
BEGIN;
INSERT INTO fstore_stream.qv VALUES (20, 1, 'never', now());
ROLLBACK;
SELECT fs_stream_wait('qv');
SELECT count(*) FROM fstore_online.qv WHERE item_id = 20;

-- events that cannot be applied go to the dead letters, with their error;
-- the others of the same batch are applied
ALTER TABLE fstore_online.qv ADD CONSTRAINT n_small CHECK (n < 100);
INSERT INTO fstore_stream.qv VALUES (10, 1, 'ok', now()), (11, 1000, 'big', now()),
    (NULL, 1, 'nokey', now()), (12, 2, 'nots', NULL), (13, 3, 'ok', now());
SELECT fs_stream_wait('qv');
SELECT item_id, n, s FROM fs_get_many(NULL::fstore_online.qv, ARRAY[10, 11, 12, 13]::bigint[]);
SELECT view_name, event - 'event_ts' AS event, error, sqlstate FROM fstore.dead_letters ORDER BY id;
ALTER TABLE fstore_online.qv DROP CONSTRAINT n_small;
SELECT stream_applied, dead_letters, queue_depth, stream_batches > 0 AS batched
  FROM fstore.stats WHERE view_name = 'qv';

-- a producer needs only INSERT on the queue table
CREATE ROLE fs_producer;
GRANT INSERT ON fstore_stream.qv TO fs_producer;
SET ROLE fs_producer;
INSERT INTO fstore_stream.qv VALUES (40, 4, 'producer', '2026-01-01');
RESET ROLE;
SELECT fs_stream_wait('qv');
SELECT item_id, n, s FROM fs_get_many(NULL::fstore_online.qv, ARRAY[40]::bigint[]);
REVOKE ALL ON fstore_stream.qv FROM fs_producer;
DROP ROLE fs_producer;

-- with the workers stopped, events wait in the queue; fs_stream_apply
-- applies them in this session
ALTER SYSTEM SET fstore.stream_workers = 0;
SELECT pg_reload_conf();
SELECT t.workers_gone() AS workers;
INSERT INTO fstore_stream.qv VALUES (30, 1, 'm', '2026-01-01'), (31, 2, 'm', '2026-01-01'),
                                    (30, 3, 'm', '2026-01-02');
SELECT fs_stream_wait('qv', '100 milliseconds') AS drained;
SELECT count(*) AS queued FROM fstore_stream.qv;
-- applying needs the writer's privileges; a refusal applies nothing
CREATE ROLE fs_consumer;
GRANT USAGE ON SCHEMA t TO fs_consumer;
SET ROLE fs_consumer;
SELECT t.err($$SELECT fs_stream_apply('qv')$$);
RESET ROLE;
REVOKE ALL ON SCHEMA t FROM fs_consumer;
DROP ROLE fs_consumer;
SELECT t.err($$SELECT fs_stream_apply('qv', -1)$$);
SELECT count(*) AS queued FROM fstore_stream.qv;
SELECT * FROM fs_stream_apply('qv', 2);
SELECT count(*) AS queued FROM fstore_stream.qv;
SELECT * FROM fs_stream_apply('qv');
SELECT * FROM fs_stream_apply('qv');
SELECT item_id, n FROM fs_get_many(NULL::fstore_online.qv, ARRAY[30, 31]::bigint[]);
-- workers back: the launcher starts them and they drain what came meanwhile
INSERT INTO fstore_stream.qv VALUES (32, 1, 'w', '2026-01-01');
ALTER SYSTEM RESET fstore.stream_workers;
SELECT pg_reload_conf();
SELECT fs_stream_wait('qv', '60 seconds') AS drained;
SELECT item_id, n FROM fs_get_many(NULL::fstore_online.qv, ARRAY[32]::bigint[]);

-- freshness of the writes is kept per view
SELECT last_event_ts >= '2026-01-03' AS has_event_ts, last_write IS NOT NULL AS has_write
  FROM fstore.freshness WHERE view_name = 'qv';

-- errors
SELECT t.err($$SELECT fs_stream_apply('nosuch')$$);
SELECT t.err($$SELECT fs_stream_apply(NULL)$$);
SELECT t.err($$SELECT fs_stream_wait('nosuch')$$);

-- the queue goes with its view
SELECT fs_drop_feature_view('qv');
SELECT to_regclass('fstore_stream.qv');
