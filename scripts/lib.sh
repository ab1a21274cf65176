# Shell helpers shared by the set-up, demo, test and benchmark scripts.
# Source it; it defines functions only.
#
# Clusters are throwaway: created under a temporary directory owned by the
# postgres user, on a free port, listening on loopback and on a socket in
# that directory, and stopped through pg_ctl (which signals the PID in
# postmaster.pid).  PostgreSQL refuses to run as root, so when we are root
# every server-side command runs as postgres through runuser.

PG_CONFIG=${PG_CONFIG:-pg_config}
if command -v "$PG_CONFIG" >/dev/null 2>&1; then
	PG_BINDIR=$("$PG_CONFIG" --bindir)
else
	PG_BINDIR=/usr/lib/postgresql/15/bin
fi
export PG_BINDIR

# Runs a command as the postgres user (directly when not root).
fs_as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- env PATH="$PG_BINDIR:$PATH" "$@"
	else
		env PATH="$PG_BINDIR:$PATH" "$@"
	fi
}

# Prints a TCP port nobody listens on.
fs_free_port() {
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
									  LocalPort => 0, ReuseAddr => 1) or die "$!";
		print $s->sockport, "\n";'
}

# Creates a temporary directory the postgres user owns; prints its path.
fs_tmpdir() {
	local d
	d=$(mktemp -d "/tmp/fstore-$1.XXXXXX")
	chmod 755 "$d"
	if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$d"; fi
	echo "$d"
}

# fs_cluster_init DIR PORT [EXTRA_CONF_FILE]: initdb in DIR/data, configured
# with fstore (and pg_cron) preloaded.
fs_cluster_init() {
	local dir=$1 port=$2 extra=${3:-}
	fs_as_pg "$PG_BINDIR/initdb" -D "$dir/data" -A trust -U postgres \
		--no-locale -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log"; return 1; }
	{
		echo "port = $port"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$dir'"
		cat "$FS_ROOT/test/fstore.conf"
		if [ -n "$extra" ]; then cat "$extra"; fi
	} >>"$dir/data/postgresql.conf"
}

fs_cluster_start() {
	fs_as_pg "$PG_BINDIR/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 120 start >/dev/null
}

fs_cluster_stop() {
	if [ -f "$1/data/postmaster.pid" ]; then
		fs_as_pg "$PG_BINDIR/pg_ctl" -D "$1/data" -m fast -w -t 120 stop >/dev/null || true
	fi
}

# fs_cluster_switch DIR FROM_BINDIR TO_BINDIR: restarts the cluster with
# other binaries (benchmarks comparing two builds of fstore on one data
# directory); nothing when they are the same.
fs_cluster_switch() {
	[ "$2" = "$3" ] && return 0
	PG_BINDIR=$2 fs_cluster_stop "$1"
	PG_BINDIR=$3 fs_cluster_start "$1"
}

# fs_psql DIR [psql args...]: psql as postgres over the cluster's socket.
fs_psql() {
	local dir=$1; shift
	local port
	port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)
	"$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}

FS_ROOT=${FS_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export FS_ROOT
