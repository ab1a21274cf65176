#!/bin/bash
# Soak run of the differential test (test/t/010_differential.pl): new seeds,
# one after the other, for a given time, each compared round by round with
# the reference model (test/t/FsModel.pm).  Prints at the end the rounds
# run, the rows applied and the calls per write path; a disagreement names
# its seed and round (rerun one seed with
# FS_DIFF_SEED=<seed> FS_TESTS=tap PROVE_TESTS=test/t/010_differential.pl scripts/test.sh).
#
# Usage: scripts/soak.sh [SECONDS [FIRST_SEED]]
#   SECONDS     how long to run (default $FS_DIFF_SECONDS, else 1800)
#   FIRST_SEED  first seed (default: from the clock); the next ones follow
# Other settings of the test pass through: FS_DIFF_ROUNDS (rounds per seed,
# default 300 in a soak), FS_DIFF_LOG=1, FS_DIFF_KEEP=1, and FS_KEEP=1 to
# keep the cluster and the logs under /tmp.
# It goes through scripts/test.sh (which builds and installs fstore first)
# and runs the one TAP test as the postgres user, over a copy of the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
export FS_DIFF_SECONDS=${1:-${FS_DIFF_SECONDS:-1800}}
if [ -n "${2:-}" ]; then
	export FS_DIFF_SEED=$2
fi
export FS_TESTS=tap PROVE_TESTS=test/t/010_differential.pl PROVE_FLAGS=${PROVE_FLAGS:--v}
exec scripts/test.sh
