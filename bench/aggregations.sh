#!/bin/bash
# Aggregation views benchmark (docs/aggregations.md): 100,000 keys, 4
# aggregates over 1 h / 1 d / 7 d, against plain SQL over an indexed raw
# events table holding the same events, in the same run.
#   1. history: N_HIST events over the last 7 days in raw_events (indexed
#      on doc_id, event_ts), loaded into the tiles by fs_materialize
#   2. reads of 1,000 random keys: fs_get_many vs the same aggregates in
#      plain SQL over raw_events (both as cached plans in one session,
#      interleaved), p50/p95/p99 of N_READS calls each
#   3. a training set of 100,000 labels (random keys and times in the last
#      7 days): fs_create_training_set vs the SQL window-function way
#      (labels and events in one window per key with RANGE frames)
#   4. streaming: 2 producers COPY batches of 1,000 events into the queue;
#      unthrottled for 20 s, then the highest sustained rate (60 s, less than
#      a second of events left queued; from 95% of the unthrottled figure
#      down by 10%) with freshness probes: commit-to-counted p50/p95/p99
# usage: aggregations.sh CLUSTER_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_agg
N_HIST=${FS_BENCH_AGG_HISTORY:-2000000}
N_READS=${FS_BENCH_AGG_READS:-300}
export PGOPTIONS="-c client_min_messages=warning"
fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
q() { fs_psql "$dir" -d $db -qAt "$@"; }

echo "1/4 history: $N_HIST events over 7 days, fs_materialize into tiles" >&2
q -v n="$N_HIST" >/dev/null <<'SQL'
CREATE EXTENSION fstore;
SELECT fs_create_entity('doc', 'doc_id bigint');
CREATE TABLE raw_events (doc_id bigint, clicks int, dwell real, event_ts timestamptz);
SELECT setseed(0.5);
INSERT INTO raw_events
SELECT 1 + floor(random() * 100000)::bigint, floor(random() * 5)::int, (random() * 100)::real,
       date_bin('1 minute', now(), '1970-01-01') - random() * interval '7 days'
  FROM generate_series(1, :n);
CREATE INDEX ON raw_events (doc_id, event_ts);
CREATE INDEX ON raw_events (event_ts);
SELECT fs_create_aggregation_view('agg', 'doc', 'clicks int, dwell real',
    ARRAY['count(*) OVER 1 hour AS opens_1h', 'sum(clicks) OVER 1 day AS clicks_1d',
          'avg(dwell) OVER 7 days AS dwell_7d', 'max(dwell) OVER 1 day AS dwell_max_1d'],
    source => 'raw_events');
SQL
load=$(q -c "SELECT round(seconds::numeric, 1) FROM fs_materialize('agg')")
q -c "VACUUM ANALYZE" >/dev/null
tiles=$(q -c "SELECT count(*) FROM fstore_offline.agg")
tile_bytes=$(q -c "SELECT pg_total_relation_size('fstore_offline.agg')")
raw_bytes=$(q -c "SELECT pg_total_relation_size('raw_events')")

echo "2/4 reads of 1,000 keys x $N_READS" >&2
reads=$(q -v n="$N_READS" <<'SQL' | grep '|'
SELECT set_config('bench.n', :'n', false) IS NULL;
CREATE TEMP TABLE timings (which text, ms float8);
-- count(x) of whole rows: every aggregate is computed (count(*) would let
-- the planner drop the unused ones)
CREATE FUNCTION pg_temp.plain(keys bigint[]) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(x) FROM (
    SELECT k.doc_id,
           count(r.event_ts) FILTER (WHERE r.event_ts > now() - interval '1 hour') AS opens_1h,
           sum(r.clicks) FILTER (WHERE r.event_ts > now() - interval '1 day') AS clicks_1d,
           avg(r.dwell) AS dwell_7d,
           max(r.dwell) FILTER (WHERE r.event_ts > now() - interval '1 day') AS dwell_max_1d
      FROM unnest(keys) WITH ORDINALITY AS k(doc_id, o)
      LEFT JOIN raw_events r ON r.doc_id = k.doc_id
           AND r.event_ts > now() - interval '7 days' AND r.event_ts <= now()
     GROUP BY k.doc_id, k.o ORDER BY k.o) x
$$;
DO $$
DECLARE
    keys bigint[];
    t0 timestamptz;
    n bigint;
BEGIN
    FOR i IN 1 .. current_setting('bench.n')::int LOOP
        keys := ARRAY(SELECT 1 + floor(random() * 100000)::bigint FROM generate_series(1, 1000));
        t0 := clock_timestamp();
        SELECT count(g) INTO n FROM fs_get_many(NULL::fstore_online.agg, keys) g;
        INSERT INTO timings VALUES ('fs_get_many', extract(epoch FROM clock_timestamp() - t0) * 1000);
        t0 := clock_timestamp();
        n := pg_temp.plain(keys);
        INSERT INTO timings VALUES ('plain SQL', extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
END $$;
SELECT which, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2),
       round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)::numeric, 2),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 2)
  FROM timings GROUP BY which ORDER BY which;
SQL
)

echo "3/4 training set of 100,000 labels" >&2
train=$(q <<'SQL'
SELECT setseed(0.7);
CREATE TABLE labels AS
SELECT 1 + floor(random() * 100000)::bigint AS doc_id,
       now() - random() * interval '6 days' AS event_ts, (random() < 0.1) AS label
  FROM generate_series(1, 100000);
ANALYZE labels;
CREATE TEMP TABLE tt (which text, s float8, n bigint);
DO $$
DECLARE
    t0 timestamptz;
    n bigint;
BEGIN
    t0 := clock_timestamp();
    n := fs_create_training_set('bench_train', 'SELECT doc_id, event_ts, label FROM public.labels', ARRAY['agg.*']);
    INSERT INTO tt VALUES ('fs_create_training_set', extract(epoch FROM clock_timestamp() - t0), n);
    t0 := clock_timestamp();
    CREATE TABLE window_train AS
    SELECT doc_id, event_ts, label, opens_1h, clicks_1d, dwell_7d, dwell_max_1d FROM (
        SELECT u.*,
               count(*) FILTER (WHERE u.is_event) OVER w1h AS opens_1h,
               sum(u.clicks) OVER w1d AS clicks_1d,
               avg(u.dwell) OVER w7d AS dwell_7d,
               max(u.dwell) OVER w1d AS dwell_max_1d
          FROM (SELECT doc_id, event_ts, NULL::bool AS label, true AS is_event, clicks, dwell
                  FROM raw_events WHERE event_ts > now() - interval '14 days'
                UNION ALL
                SELECT doc_id, event_ts, label, false, NULL, NULL FROM labels) u
        WINDOW w1h AS (PARTITION BY u.doc_id ORDER BY u.event_ts RANGE BETWEEN interval '1 hour' PRECEDING AND CURRENT ROW),
               w1d AS (PARTITION BY u.doc_id ORDER BY u.event_ts RANGE BETWEEN interval '1 day' PRECEDING AND CURRENT ROW),
               w7d AS (PARTITION BY u.doc_id ORDER BY u.event_ts RANGE BETWEEN interval '7 days' PRECEDING AND CURRENT ROW)) x
     WHERE NOT x.is_event;
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO tt VALUES ('SQL window functions', extract(epoch FROM clock_timestamp() - t0), n);
END $$;
SELECT which, round(s::numeric, 2), n FROM tt ORDER BY which;
SQL
)

echo "4/4 streaming" >&2
conn="$FS_BENCH_CONNINFO dbname=$db"
drain() { q -c "SELECT fs_stream_wait('agg', '300 seconds')" >/dev/null; }
val() { echo "$1" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p; s/^$2=\([0-9.]*\).*/\1/p" | head -1; }
full=$(bench/bin/agg_bench -d "$conn" -v agg -p 2 -b 1000 -s 20)
drain
cap=$(val "$full" applied_per_s)
rate=$(awk -v c="$cap" 'BEGIN { r = int(c * 0.95 / 1000) * 1000; print (r < 1000 ? 1000 : r) }')
sustained=""
for try in 1 2 3 4; do
	echo "   $rate events/s for 60 s, with freshness probes" >&2
	out=$(bench/bin/agg_bench -d "$conn" -v agg -p 2 -b 1000 -s 60 -r "$rate" -F)
	left=$(val "$out" queue_end)
	drain
	if [ "$left" -le "$rate" ]; then sustained=$out; break; fi
	rate=$(awk -v r="$rate" 'BEGIN { print int(r * 0.9 / 1000) * 1000 }')
done
tiles_after=$(q -c "SELECT count(*) FROM fstore_offline.agg")

echo
echo "Aggregation views: 100,000 keys; count 1 h, sum 1 d, avg 7 d, max 1 d; 1-minute tiles"
echo "(shared machine: other jobs ran at the same time; compare ratios, not absolute figures)"
echo "history: $N_HIST events over 7 days -> $tiles tiles in ${load}s; tiles $((tile_bytes / 1048576)) MB vs raw events with indexes $((raw_bytes / 1048576)) MB"
printf "%-36s %10s %10s %10s\n" "reads of 1,000 keys (ms)" p50 p95 p99
echo "$reads" | awk -F'|' '{ printf "%-36s %10s %10s %10s\n", $1, $2, $3, $4 }'
printf "%-36s %10s %10s\n" "training set, 100,000 labels" seconds rows
echo "$train" | awk -F'|' '{ printf "%-36s %10s %10s\n", $1, $2, $3 }'
echo "stream, unthrottled 20 s:  $full"
echo "stream, sustained 60 s:    $sustained"
awk -v cap="$cap" -v s="$(val "$sustained" produced_per_s)" -v p50="$(val "$sustained" fresh_p50)" \
	-v p95="$(val "$sustained" fresh_p95)" -v p99="$(val "$sustained" fresh_p99)" 'BEGIN {
	printf "%-44s %14s\n", "figure", "value"
	printf "%-44s %14.0f\n", "apply rate under full load, events/s", cap
	printf "%-44s %14.0f\n", "highest sustained rate (60 s), events/s", s
	printf "%-44s %14s\n", "freshness at that rate p50/p95/p99, ms", p50 "/" p95 "/" p99
}'
echo "tiles after streaming: $tiles_after"
