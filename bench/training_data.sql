-- Data of the training-set benchmark: three feature views over 500,000
-- documents, each with 5,000,000 history rows (10 versions per key spread
-- over 100 days, appended in time order as a real history grows) and 8
-- float4 features; v3 has a ttl of 7 days.  Labels: 2,000,000 entity rows
-- over 550,000 keys (some without history) at random times.
CREATE EXTENSION IF NOT EXISTS fstore;
SELECT fs_create_entity('doc', 'doc_id bigint');
SELECT fs_create_feature_view('v1', 'doc', 'a1 real, a2 real, a3 real, a4 real, a5 real, a6 real, a7 real, a8 real');
SELECT fs_create_feature_view('v2', 'doc', 'b1 real, b2 real, b3 real, b4 real, b5 real, b6 real, b7 real, b8 real');
SELECT fs_create_feature_view('v3', 'doc', 'c1 real, c2 real, c3 real, c4 real, c5 real, c6 real, c7 real, c8 real',
                              ttl => interval '7 days');

CREATE FUNCTION gen_history(v text, seed int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format($q$
    INSERT INTO fstore_offline.%I
    SELECT k, ts, (h %% 1000) / 10.0, (h %% 997) / 7.0, (h %% 991) / 3.0, (h %% 983),
           (h %% 977) / 100.0, (h %% 971) / 9.0, (h %% 967) / 11.0, (h %% 953) / 13.0,
           '2026-06-01'::timestamptz + (ts - '2026-01-01'::timestamptz) / 10
      FROM (SELECT k, '2026-01-01'::timestamptz + (j * 10 + (k * 7 + j * 13 + %s) %% 10) * interval '1 day'
                      + ((k * 7919 + j * 104729 + %s) %% 86400) * interval '1 second' AS ts,
                   abs(hashint8(k * 10 + j + %s)) AS h
              FROM generate_series(1::bigint, 500000) k, generate_series(0, 9) j) s
     ORDER BY ts $q$, v, seed, seed, seed);
END $$;
SELECT gen_history('v1', 1);
SELECT gen_history('v2', 2);
SELECT gen_history('v3', 3);

CREATE TABLE labels (row_id bigint, doc_id bigint, event_ts timestamptz, label bool);
INSERT INTO labels
SELECT i, 1 + abs(hashint8(i)) % 550000,
       '2026-01-01'::timestamptz + (abs(hashint8(i + 7)) % (100 * 86400)) * interval '1 second',
       abs(hashint8(i + 13)) % 10 = 0
  FROM generate_series(1::bigint, 2000000) i;
VACUUM ANALYZE;
