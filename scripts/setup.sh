#!/bin/bash
# Installs everything fstore needs on Debian 12 (as root), then builds and
# installs the extension.  Idempotent; used by demo.sh, test.sh and the
# benchmarks.  Set FS_SKIP_APT=1 to skip the package step.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	build-essential
	postgresql-15 postgresql-client-15 postgresql-server-dev-15
	postgresql-15-cron
	libcmocka-dev
	# libpq/libpq.h includes the GSSAPI headers (Debian's server is built with GSSAPI)
	libkrb5-dev
	libipc-run-perl
	perl
	# the Python client (clients/python) and its tests
	python3-psycopg2 python3-numpy python3-pandas python3-pytest
	# the exporter the metrics of contrib/prometheus are for (TAP 050)
	prometheus-postgres-exporter
	${FS_EXTRA_PACKAGES:-}
)

if [ "${FS_SKIP_APT:-0}" != 1 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: run as root (it installs packages), or set FS_SKIP_APT=1" >&2
		exit 1
	fi
	missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "==> installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi

echo "==> building fstore"
make -s -j2 >/dev/null
echo "==> installing fstore into $("${PG_CONFIG:-pg_config}" --pkglibdir)"
make -s install >/dev/null
