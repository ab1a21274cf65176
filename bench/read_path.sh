#!/bin/bash
# Read-path benchmark: fs_get_many (typed) and fs_get_many_packed against
# their baselines, in the same run, on 1,000,000 keys x 32 float4 features:
#   sql            SELECT * FROM the online table WHERE id = ANY($1)
#   fs_nocache     fs_get_many with the hot cache off
#   fs / packed    fstore with the cache warm
#   redis_mget     Redis packed vectors, one MGET
#   feast          Feast's Postgres layout (a row per entity and feature;
#                  loading it takes minutes: only when listed in FS_BENCH_MODES)
#   redis_hgetall  Redis hashes, pipelined HGETALL (when listed)
# Latency: 100, 1,000 and 5,000 keys per request, one client.  Throughput:
# 1,000 keys, 1, 2, 4 and 8 clients against the same server (and Redis).
# Every figure is the median over FS_BENCH_ROUNDS rounds (default 3), the
# modes interleaved within a round, because the machine is shared.
# usage: read_path.sh CLUSTER_DIR     (FS_BENCH_SECONDS per run, default 5;
#        with FS_BENCH_OUT, writes its figures to $FS_BENCH_OUT/read_latency.csv)
# Variants measured in the same run, on the same data, the latency rounds
# taking turns (the server is restarted and its cache warmed for each):
#   FS_BENCH_HUGEPAGES=1      also with huge_pages = on (bench/run.sh reserves
#                             the pages); those modes are shown as MODE+hp
#   FS_BENCH_BASE_PG_CONFIG   pg_config of another install of fstore (say,
#                             main's build): also with its binaries, shown
#                             as base:MODE (and base:MODE+hp)
# FS_BENCH_CLIENTS=none skips the concurrency table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
dir=$1
db=bench_read
secs=${FS_BENCH_SECONDS:-5}
rounds=${FS_BENCH_ROUNDS:-3}
sizes=${FS_BENCH_SIZES:-100 1000 5000}
modes=${FS_BENCH_MODES:-sql fs_nocache fs packed redis_mget}
clients=${FS_BENCH_CLIENTS:-1 2 4 8}
cmodes=${FS_BENCH_CONC_MODES:-packed fs sql redis_mget}
export PGOPTIONS="-c client_min_messages=warning"

fs_psql "$dir" -d postgres -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
echo "loading 1,000,000 keys x 32 features..." >&2
fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
CREATE EXTENSION fstore;
CREATE EXTENSION pg_prewarm;
SELECT setseed(0.5);
SELECT fs_create_entity('k', 'id bigint');
SELECT string_agg(format('f%s real', i), ', ') AS feats FROM generate_series(1, 32) i \gset
SELECT fs_create_feature_view('wide', 'k', :'feats');
SELECT string_agg('random()::real', ', ') AS vals FROM generate_series(1, 32) i \gset
SELECT * FROM fs_write_query('wide', format('SELECT g, %s, now() FROM generate_series(1, 1000000) g', :'vals'));
VACUUM ANALYZE;
SQL
if [[ " $modes " == *" feast "* ]]; then
	fs_psql "$dir" -d $db -q >/dev/null <<'SQL'
-- Feast's online table: entity key and value as bytea, one row per feature
CREATE TABLE feast_wide (entity_key bytea, feature_name text, value bytea,
                         event_ts timestamptz, created_ts timestamptz,
                         PRIMARY KEY (entity_key, feature_name));
SELECT string_agg(format('f%s', i), ', ') AS fl FROM generate_series(1, 32) i \gset
INSERT INTO feast_wide
SELECT int8send(w.id), 'f' || i, float4send((ARRAY[:fl])[i]), w.event_ts, now()
  FROM fstore_online.wide w, generate_series(1, 32) i;
VACUUM ANALYZE feast_wide;
SELECT pg_prewarm('feast_wide'), pg_prewarm('feast_wide_pkey');
SQL
fi
warm() {
	fs_psql "$dir" -d $db -qAt -c "SELECT pg_prewarm('fstore_online.wide'), pg_prewarm('fstore_online.wide_pkey')" >/dev/null
	# warm the cache: every key once
	fs_psql "$dir" -d $db -qAt -c "SELECT sum((SELECT count(*) FROM fs_get_many(NULL::fstore_online.wide,
	    (SELECT array_agg(g::bigint) FROM generate_series(s, s + 9999) g)))) FROM generate_series(1, 1000000, 10000) s" >/dev/null
}
# variants: label:bindir:huge_pages (label "" is this build as configured)
variants=()
if [ -n "${FS_BENCH_BASE_PG_CONFIG:-}" ]; then
	basebin=$("$FS_BENCH_BASE_PG_CONFIG" --bindir)
	variants+=("base:$basebin:")
	[ "${FS_BENCH_HUGEPAGES:-0}" = 1 ] && variants+=("base+hp:$basebin:on")
fi
[ "${FS_BENCH_HUGEPAGES:-0}" = 1 ] && variants+=("+hp:$PG_BINDIR:on")
[ ${#variants[@]} -gt 0 ] && variants+=(":$PG_BINDIR:")
[ ${#variants[@]} -eq 0 ] && variants=(":$PG_BINDIR:keep")
# huge pages reserved by this script (as root, while a variant with
# huge_pages = on runs): vm.nr_hugepages is raised by what the server needs
# just before it starts and lowered again right after it stops
# (pages other servers already use, even surplus ones, are counted in:
# the pool is set to all of them plus what this server needs, then back
# to the value it had)
hp_held=0
hp_before=0
hp_reserve() {
	local need got total
	need=$(PG_BINDIR=$1 fs_as_pg "$1/postgres" -D "$dir/data" -C shared_memory_size_in_huge_pages)
	hp_before=$(cat /proc/sys/vm/nr_hugepages)
	total=$(awk '/HugePages_Total/ { print $2 }' /proc/meminfo)
	echo $((total + need)) >/proc/sys/vm/nr_hugepages
	hp_held=$need
	got=$(awk '/HugePages_Free/ { print $2 - 0 }' /proc/meminfo)
	got=$((got - $(awk '/HugePages_Rsvd/ { print $2 }' /proc/meminfo)))
	if [ "$got" -lt "$need" ]; then
		echo "could not reserve $need huge pages ($got free): memory too fragmented?" >&2
		exit 1
	fi
}
hp_release() {
	[ "$hp_held" -gt 0 ] || return 0
	echo "$hp_before" >/proc/sys/vm/nr_hugepages
	hp_held=0
}
# restarts the server as variant $1 (binaries, huge_pages) and warms it
use_variant() {
	local label bin hp
	IFS=: read -r label bin hp <<<"$1"
	[ "$hp" = keep ] && return 0
	fs_cluster_stop "$dir"
	hp_release
	if [ "$hp" = on ]; then
		echo "huge_pages = on" >"$dir/data/bench_hugepages.conf"
		hp_reserve "$bin"
	else
		echo "huge_pages = off" >"$dir/data/bench_hugepages.conf"
	fi
	grep -q "bench_hugepages.conf" "$dir/data/postgresql.conf" ||
		echo "include_if_exists = 'bench_hugepages.conf'" >>"$dir/data/postgresql.conf"
	PG_BINDIR=$bin fs_cluster_start "$dir"
	echo "variant '${label:-this build}': $(fs_psql "$dir" -d $db -qAt -c "SHOW huge_pages") huge pages, $(grep -E 'HugePages_(Total|Free)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')" >&2
	warm
}
# tags the modes of lookup_bench's lines with the variant's label
tag() {
	local label=${1%%:*}
	case $label in
		"") cat ;;
		base*) awk -v p="base:" -v s="${label#base}" '{ $1 = p $1 s; print }' ;;
		*) awk -v s="$label" '{ $1 = $1 s; print }' ;;
	esac
}
warm

rport=$(fs_free_port)
rdir=$(fs_tmpdir redis)
# PostgreSQL is reached over its Unix socket, and so is Redis
redis-server --port "$rport" --bind 127.0.0.1 --unixsocket "$rdir/redis.sock" --unixsocketperm 700 \
	--save "" --appendonly no --dir "$rdir" \
	--daemonize yes --pidfile "$rdir/redis.pid" --logfile "$rdir/redis.log" >/dev/null
trap 'kill "$(cat "$rdir/redis.pid")" 2>/dev/null; rm -rf "$rdir"; if [ "$hp_held" -gt 0 ]; then fs_cluster_stop "$dir"; hp_release; fi' EXIT
for i in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
conn="$FS_BENCH_CONNINFO dbname=$db"
bench/bin/lookup_bench -L -d "$conn" -R "$rdir/redis.sock" 2>&1 >&2

run() { bench/bin/lookup_bench -d "$conn" -R "$rdir/redis.sock" "$@"; }

# every mode must return the same values: equal checksums over fixed requests
echo "agreement check (200 requests of 1,000 keys, same keys in every mode):"
for m in $modes; do run -m "$m" -k 1000 -n 200 -w 0; done | awk '{print "  " $1, $NF, $(NF-1)}'
echo

out=$(mktemp)
if [ ${#variants[@]} -gt 1 ]; then
	for r in $(seq "$rounds"); do
		for v in "${variants[@]}"; do
			use_variant "$v"
			for k in $sizes; do
				for m in $modes; do
					# Redis does not change with the server's variant
					[ "$m" = redis_mget ] && [ "${v%%:*}" != "" ] && continue
					run -m "$m" -k "$k" -c 1 -n 100000 -w 20 -t "$secs" | tag "$v" >>"$out"
				done
			done
		done
	done
else
	for k in $sizes; do
		for r in $(seq "$rounds"); do
			for m in $modes; do
				run -m "$m" -k "$k" -c 1 -n 100000 -w 20 -t "$secs" >>"$out"
			done
		done
	done
fi
[ "$clients" = none ] && clients=
cout=$(mktemp)
for c in $clients; do
	for r in $(seq "$rounds"); do
		for m in $cmodes; do
			run -m "$m" -k 1000 -c "$c" -n 100000 -w 20 -t "$secs" >>"$cout"
		done
	done
done

# medians over the rounds of each (keys, clients, mode)
medians() {
	awk '
function val(s, k,   i, n, a) { n = split(s, a, " "); for (i = 1; i <= n; i++) if (index(a[i], k "=") == 1) return substr(a[i], length(k) + 2); return "" }
function median(list,   a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	key = val($0, "keys") " " val($0, "clients") " " $1
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
	p50[key] = p50[key] " " val($0, "p50"); p95[key] = p95[key] " " val($0, "p95")
	p99[key] = p99[key] " " val($0, "p99"); rps[key] = rps[key] " " val($0, "rps")
	cpu[key] = cpu[key] " " val($0, "srvcpu")
}
END { for (i = 1; i <= nk; i++) { k = order[i]; print k, median(p50[k]), median(p95[k]), median(p99[k]), median(rps[k]), median(cpu[k]) } }' "$1"
}

echo "Read path: 1,000,000 keys x 32 float4, warm; libpq binary, prepared; one client;"
echo "latency in ms per request, median of $rounds rounds of ${secs} s"
medians "$out" | awk '
{ k = $1; m = $3; p50[k, m] = $4; p95[k, m] = $5; p99[k, m] = $6; rps[k, m] = $7; cpu[k, m] = $8
  if (!(k in ks)) { ks[k] = 1; korder[++nk] = k } if (!(m in ms)) { ms[m] = 1; morder[++nm] = m } }
function ratio(a, b) { return (b > 0 && a > 0) ? sprintf("%.2f", a / b) : "-" }
END {
	printf "%-6s %-16s %8s %8s %8s %8s %9s %9s %9s %10s %10s %9s\n", "keys", "mode", "p50", "p95", "p99", "req/s", "srv us", "sql/x p50", "sql/x p99", "mget/x p50", "mget/x p99", "sql/x srv"
	for (i = 1; i <= nk; i++) for (j = 1; j <= nm; j++) {
		k = korder[i]; m = morder[j]
		if (!((k, m) in p50)) continue
		printf "%-6s %-16s %8.3f %8.3f %8.3f %8.0f %9.0f %9s %9s %10s %10s %9s\n", k, m, p50[k, m], p95[k, m], p99[k, m], rps[k, m], cpu[k, m],
			ratio(p50[k, "sql"], p50[k, m]), ratio(p99[k, "sql"], p99[k, m]),
			ratio(p50[k, "redis_mget"], p50[k, m]), ratio(p99[k, "redis_mget"], p99[k, m]),
			ratio(cpu[k, "sql"], cpu[k, m])
	}
	print "srv us: CPU time of the server (PostgreSQL backend, or Redis) per request, in microseconds"
	if ((1000, "packed") in p50)
		printf "\ntargets at 1,000 keys: packed p50 %.3f <= 0.5 ms %s, p99 %.3f <= 1.0 ms %s, faster than MGET at p50 %s\n",
			p50[1000, "packed"], p50[1000, "packed"] <= 0.5 ? "met" : "MISSED",
			p99[1000, "packed"], p99[1000, "packed"] <= 1.0 ? "met" : "MISSED",
			((1000, "redis_mget") in p50) ? (p50[1000, "packed"] < p50[1000, "redis_mget"] ? "met" : "MISSED") : "-"
	if ((1000, "fs") in p50 && (1000, "sql") in p50)
		printf "typed fs_get_many / sql at 1,000 keys: %.2fx p50, %.2fx p99 (target 3x) %s\n",
			p50[1000, "sql"] / p50[1000, "fs"], p99[1000, "sql"] / p99[1000, "fs"],
			(p50[1000, "sql"] >= 3 * p50[1000, "fs"] && p99[1000, "sql"] >= 3 * p99[1000, "fs"]) ? "met" : "MISSED"
}'
echo
echo "Concurrency: 1,000 keys per request, N clients against the same server (median of $rounds rounds)"
medians "$cout" | awk '
{ c = $2; m = $3; p50[c, m] = $4; p99[c, m] = $6; rps[c, m] = $7; cpu[c, m] = $8
  if (!(c in cs)) { cs[c] = 1; corder[++nc] = c } if (!(m in ms)) { ms[m] = 1; morder[++nm] = m } }
END {
	printf "%-8s", "clients"
	for (j = 1; j <= nm; j++) printf " %28s", morder[j] " req/s | p99 | srv us"
	printf "\n"
	for (i = 1; i <= nc; i++) {
		c = corder[i]; printf "%-8s", c
		for (j = 1; j <= nm; j++) printf " %12.0f | %6.2f | %6.0f", rps[c, morder[j]], p99[c, morder[j]], cpu[c, morder[j]]
		printf "\n"
	}
}'
# CSV for bench/plot.sh: the latency medians (one client)
if [ -n "${FS_BENCH_OUT:-}" ]; then
	{ echo "mode,keys,clients,p50_ms,p95_ms,p99_ms,rps"
	  medians "$out" | awk '{ print $3 "," $1 "," $2 "," $4 "," $5 "," $6 "," $7 }'
	} >"$FS_BENCH_OUT/read_latency.csv"
fi
rm -f "$out" "$cout"
fs_psql "$dir" -d $db -q -c "SELECT * FROM fstore.cache_stats" -c "SELECT view_name, lookups, keys_requested, cache_hits, cache_misses, evictions FROM fstore.stats"
