"""Fixtures: a database with fstore and known data on the server that
PGHOST/PGPORT/PGUSER point at (scripts/test.sh gives a throwaway cluster;
FSTORE_TEST_DB names the database, created afresh, default fstore_pytest).
"""

import os

import psycopg2
import pytest

DB = os.environ.get("FSTORE_TEST_DB", "fstore_pytest")

SETUP = r"""
CREATE EXTENSION fstore;
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_entity('user_doc', 'user_id bigint, doc_id text');
SELECT fs_create_entity('page', 'url text');

-- every scalar type the packed form has, more than 8 features (2 NULL-bit bytes)
SELECT fs_create_feature_view('doc_stats', 'doc',
    'views_7d int, ctr real, clicked bool, score float8, small int2, big int8,
     f7 real, f8 real, f9 real, f10 real');
SELECT fs_create_feature_view('doc_activity', 'doc', 'opens_1h int', ttl => interval '1 hour');
SELECT fs_create_feature_view('doc_all_real', 'doc', 'a real, b real, c real');
SELECT fs_create_feature_view('doc_emb', 'doc',
    'embedding real[], label text, seen_at timestamptz, day date');
SELECT fs_create_feature_view('ud', 'user_doc', 'clicks int, affinity real');
SELECT fs_create_feature_view('page_stats', 'page', 'hits bigint');
SELECT fs_create_feature_service('ranker',
    ARRAY['doc_stats.views_7d', 'doc_stats.ctr', 'doc_activity.opens_1h AS opens']);

SELECT fs_write_query('doc_stats', $q$
    SELECT g, g % 7, (g / 100.0)::real, g % 2 = 0, g * 1.5, (g % 300)::int2, g * 10000000000,
           g + 0.25, g + 0.5, g + 0.75, g + 1.0,
           timestamptz '2026-11-01 10:00+00' + g * interval '1 second'
      FROM generate_series(1, 1500) g$q$);
-- NULL features: a few keys with some, one key with all of them NULL
SELECT fs_write('doc_stats', ARRAY[
    ROW(2000, NULL, 0.5, NULL, 1.0, 1, 1, NULL, 1, 1, NULL, now()),
    ROW(2001, 3, NULL, true, NULL, NULL, NULL, 2, NULL, NULL, 4, now()),
    ROW(2002, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, now())
  ]::fstore_online.doc_stats[]);
-- ttl of 1 hour: 10..19 fresh, 20..29 expired
SELECT fs_write_query('doc_activity', $q$
    SELECT g, g * 3, CASE WHEN g < 20 THEN now() ELSE now() - interval '2 hours' END
      FROM generate_series(10, 29) g$q$);
SELECT fs_write_query('doc_all_real', $q$
    SELECT g, g * 0.5, g * 0.25, -g, now() FROM generate_series(1, 1200) g$q$);
SELECT fs_write('doc_all_real', ARRAY[ROW(5000, NULL, 1, 2, now())]::fstore_online.doc_all_real[]);
SELECT fs_write('doc_emb', ARRAY[
    ROW(1, ARRAY[1.5, 2.5]::real[], 'one', timestamptz '2026-01-02 03:04:05.123456+00', date '2026-01-02', now()),
    ROW(2, NULL, NULL, NULL, NULL, now()),
    ROW(3, ARRAY[]::real[], 'three', timestamptz '2026-06-01 00:00+02', date '2026-06-01', now())
  ]::fstore_online.doc_emb[]);
SELECT fs_write('ud', ARRAY[
    ROW(1, 'a', 3, 0.5, now()), ROW(1, 'b', NULL, 0.25, now()), ROW(2, 'a', 7, NULL, now())
  ]::fstore_online.ud[]);
SELECT fs_write('page_stats', ARRAY[ROW('/a', 10, now()), ROW('/b''q', 20, now())]::fstore_online.page_stats[]);

-- labels for a training set: booleans, timestamps, arrays
CREATE SCHEMA labels;
CREATE TABLE labels.clicks (doc_id bigint, event_ts timestamptz, clicked bool, tags int[]);
INSERT INTO labels.clicks VALUES
    (1, timestamptz '2026-11-01 10:00:30+00', true, ARRAY[1, 2]),
    (2, timestamptz '2026-11-01 09:00:00+00', false, NULL),
    (3, timestamptz '2026-11-02 10:00:00+00', NULL, ARRAY[3]),
    (9999, timestamptz '2026-11-02 10:00:00+00', true, ARRAY[]::int[]);
SELECT fs_create_training_set('train', 'SELECT doc_id, event_ts, clicked, tags FROM labels.clicks',
    ARRAY['doc_stats.views_7d', 'doc_stats.ctr', 'doc_stats.clicked AS was_clicked', 'doc_emb.embedding']);
"""


def _connect(dbname):
    return psycopg2.connect(dbname=dbname)


@pytest.fixture(scope="session")
def conn():
    admin = _connect(os.environ.get("FSTORE_TEST_ADMIN_DB", "postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % DB)
        cur.execute("CREATE DATABASE %s" % DB)
    c = _connect(DB)
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute(SETUP)
    yield c
    c.close()
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE %s WITH (FORCE)" % DB)
    admin.close()
