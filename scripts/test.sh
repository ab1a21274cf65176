#!/bin/bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite:
#   1. cmocka unit tests (test/unit)
#   2. pg_regress (sql/, expected/) and isolation specs (test/isolation)
#      against a throwaway cluster with fstore and pg_cron preloaded
#   3. TAP tests (test/t/*.pl), each starting its own clusters
# Exits non-zero when any test fails.  FS_TESTS=unit,regress,isolation,tap
# picks a subset; PROVE_TESTS='test/t/001_x.pl ...' picks TAP files.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/lib.sh

want() { [[ ",${FS_TESTS:-unit,regress,isolation,tap}," == *",$1,"* ]]; }
failed=()

if want unit; then
	echo "==> unit tests"
	make -s -C test/unit run || failed+=(unit)
fi

# A copy of the tree the postgres user can write into (results, tmp_check).
work=$(fs_tmpdir test)
cluster="$work/cluster"
cleanup() {
	fs_cluster_stop "$cluster"
	if [ "${FS_KEEP:-0}" != 1 ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
mkdir -p "$work/tree" "$cluster"
tar --exclude=.git --exclude='*.o' --exclude='*.so' -cf - . | tar -C "$work/tree" -xf -
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$work"; fi

if want regress || want isolation; then
	port=$(fs_free_port)
	fs_cluster_init "$cluster" "$port"
	fs_cluster_start "$cluster"
	export PGHOST="$cluster" PGPORT="$port" PGUSER=postgres
	if want regress; then
		echo "==> pg_regress"
		fs_as_pg make -s -C "$work/tree" installcheck PGHOST="$cluster" PGPORT="$port" PGUSER=postgres \
			|| { cat "$work/tree/regression.diffs" 2>/dev/null | head -200; failed+=(regress); }
	fi
	if want isolation; then
		echo "==> isolation"
		specs=$(cd test/isolation/specs && ls *.spec 2>/dev/null | sed 's/\.spec$//' | tr '\n' ' ')
		if [ -n "$specs" ]; then
			fs_as_pg "$("$PG_CONFIG" --pgxs | xargs dirname)/../test/isolation/pg_isolation_regress" \
				--inputdir="$work/tree/test/isolation" --outputdir="$work/tree/test/isolation/out" \
				--bindir="$PG_BINDIR" --host="$cluster" --port="$port" --user=postgres \
				--dbname=fstore_isolation --load-extension=fstore $specs \
				|| { cat "$work/tree/test/isolation/out/regression.diffs" 2>/dev/null | head -200; failed+=(isolation); }
		fi
	fi
	fs_cluster_stop "$cluster"
	unset PGHOST PGPORT PGUSER
fi

if want tap; then
	echo "==> TAP"
	perldir="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/perl"
	(cd "$work/tree" && fs_as_pg env TESTDIR="$work/tree/test" PG_REGRESS="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress" \
		FS_ROOT="$work/tree" \
		prove -I "$perldir" -I test/t ${PROVE_FLAGS:-} ${PROVE_TESTS:-test/t/*.pl}) || failed+=(tap)
fi

if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}"
	exit 1
fi
echo "all tests passed"
