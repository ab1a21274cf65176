#!/bin/bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite:
#   1. cmocka unit tests (test/unit, `make unitcheck`)
#   2. pg_regress (sql/, expected/) and isolation specs (test/isolation),
#      through PGXS's `make installcheck`, against a throwaway cluster with
#      fstore and pg_cron preloaded
#   3. the Python client's pytest tests (clients/python/tests), against
#      the same cluster
#   4. TAP tests (test/t/*.pl, `make installcheck`'s prove part), each
#      starting its own clusters; 050_prometheus.pl tests the exporter
#      configuration in contrib/prometheus
# Exits non-zero when any test fails.  FS_TESTS=unit,regress,isolation,python,tap
# picks a subset; PROVE_TESTS='test/t/001_x.pl ...' picks TAP files,
# PROVE_FLAGS and PYTEST_FLAGS pass options on.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/lib.sh

want() { [[ ",${FS_TESTS:-unit,regress,isolation,python,tap}," == *",$1,"* ]]; }
failed=()

if want unit; then
	echo "==> unit tests"
	make -s --no-print-directory unitcheck || failed+=(unit)
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
tar --exclude=.git --exclude="*.o" --exclude="*.so" --exclude=__pycache__ -cf - . | tar -C "$work/tree" -xf -
if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$work"; fi

# make installcheck's parts, run as postgres in the copy; "$@" picks one
installcheck() {
	fs_as_pg make -s -C "$work/tree" installcheck "$@"
}

if want regress || want isolation || want python; then
	port=$(fs_free_port)
	fs_cluster_init "$cluster" "$port"
	fs_cluster_start "$cluster"
	export PGHOST="$cluster" PGPORT="$port" PGUSER=postgres
	if want regress; then
		echo "==> pg_regress"
		installcheck ISOLATION= TAP_TESTS= \
			|| { cat "$work/tree/regression.diffs" 2>/dev/null | head -200; failed+=(regress); }
	fi
	if want isolation; then
		echo "==> isolation"
		installcheck REGRESS= TAP_TESTS= \
			|| { cat "$work/tree/output_iso/regression.diffs" 2>/dev/null | head -200; failed+=(isolation); }
	fi
	if want python; then
		# the Python client (clients/python) against the same server; its
		# fixture creates and drops its own database
		echo "==> python"
		(cd "$work/tree/clients/python" && PYTHONPATH=. PYTHONDONTWRITEBYTECODE=1 \
			"${FS_PYTHON:-/usr/bin/python3}" -m pytest -q -p no:cacheprovider ${PYTEST_FLAGS:-} tests) \
			|| failed+=(python)
	fi
	fs_cluster_stop "$cluster"
	unset PGHOST PGPORT PGUSER
fi

if want tap; then
	echo "==> TAP"
	# an empty PROVE_TESTS on the command line would hide the Makefile's
	# default (test/t/*.pl): pass it only when it names files
	installcheck REGRESS= ISOLATION= ${PROVE_TESTS:+PROVE_TESTS="$PROVE_TESTS"} PROVE_FLAGS="${PROVE_FLAGS:-}" \
		|| failed+=(tap)
fi

if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}"
	exit 1
fi
echo "all tests passed"
