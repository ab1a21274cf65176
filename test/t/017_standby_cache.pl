# Exact hot caches on hot standbys.  The primary WAL-logs what its writers
# invalidate (resource manager "fstore"); a streaming standby's redo applies
# it to the standby's own cache.  After every replayed change the standby's
# fs_get_many must equal its tables, and it must serve hits from its cache.
# Covers fs_write, fs_write_query (small and whole-view), the stream
# path, plain DML,
# TRUNCATE, rollbacks, drop/re-create of a view, a reader filling across a
# replayed commit, concurrent writes while the standby reads, standby
# restart, a primary without a cache, prepared transactions across a
# standby restart and a primary crash, promotion; and shows that with
# fstore.debug_skip_standby_invalidation the standby serves stale rows.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.cache_size = '16MB'
max_prepared_transactions = 5
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION fstore;
	CREATE EXTENSION pg_walinspect;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('ds', 'doc', 'n bigint');
	SELECT fs_create_feature_view('tv', 'doc', 'm int', ttl => interval '1 hour');
	SELECT fs_write_query('ds', 'SELECT g, g, now() FROM generate_series(1, 1000) g');
	-- odd keys of tv are older than its ttl
	SELECT fs_write_query('tv', $$SELECT g, g * 10, now() - CASE WHEN g % 2 = 1 THEN interval '2 hours' ELSE interval '0' END FROM generate_series(1, 200) g$$);
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "fstore.cache_size = '16MB'");
# FS_SKIP_STANDBY_INVALIDATION=1 runs the whole test with the standby's
# invalidations off: the checks must then fail (a proof that they can)
$standby->append_conf('postgresql.conf', 'fstore.debug_skip_standby_invalidation = on')
  if $ENV{FS_SKIP_STANDBY_INVALIDATION};
$standby->start;
$primary->wait_for_catchup($standby);

# Keys 1..1100 of a view, through fs_get_many and through the table (with
# the ttl applied as fs_get_many does): the number of keys that differ.
sub mismatches
{
	my ($node, $view, $col, $ttl) = @_;
	my $fresh = $ttl ? "AND o.event_ts >= now() - interval '$ttl'" : '';
	return $node->safe_psql('postgres', qq{
		WITH k AS (SELECT array_agg(g::bigint ORDER BY g) AS keys FROM generate_series(1, 1100) g)
		SELECT count(*) FROM (
			SELECT row_number() OVER () AS i, f.doc_id, f.$col AS v, f.event_ts
			  FROM k, fs_get_many(NULL::fstore_online.$view, k.keys) f
		) f JOIN (
			SELECT u.i, u.key, o.$col AS v, o.event_ts
			  FROM k, unnest(k.keys) WITH ORDINALITY u(key, i)
			  LEFT JOIN fstore_online.$view o ON o.doc_id = u.key $fresh
		) t USING (i)
		WHERE (f.v, f.event_ts) IS DISTINCT FROM (t.v, t.event_ts) OR f.doc_id IS DISTINCT FROM t.key});
}

sub hits
{
	my ($node, $view) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(sum(cache_hits), 0) FROM fstore.stats WHERE view_name = '$view'");
}

sub n_of
{
	my ($node, $key) = @_;
	return $node->safe_psql('postgres',
		"SELECT coalesce(n::text, '-') FROM fs_get_many(NULL::fstore_online.ds, ARRAY[$key]::bigint[])");
}

# After a change: catch up, read twice (the second read from the cache),
# and compare both with the standby's tables.
sub check_standby
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	for my $view (['ds', 'n', undef], ['tv', 'm', '1 hour'])
	{
		my $h0 = hits($standby, $view->[0]);
		is(mismatches($standby, @$view), 0, "$what: $view->[0] on the standby equals its table");
		is(mismatches($standby, @$view), 0, "$what: $view->[0] again, from the cache");
		my $h1 = hits($standby, $view->[0]);
		ok($h1 > $h0, "$what: $view->[0] served cache hits on the standby ($h0 -> $h1)");
	}
}

check_standby('initial');
ok($standby->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats') > 1000,
	'the standby fills its cache');

# ---- writes of every kind ----

$primary->safe_psql('postgres',
	"SELECT fs_write('ds', ARRAY[ROW(1, 101, now()), ROW(1050, 7, now())]::fstore_online.ds[])");
check_standby('fs_write');
is(n_of($standby, 1), '101', 'the written value is served');

$primary->safe_psql('postgres',
	"SELECT fs_write_query('ds', 'SELECT g, g + 1000, now() FROM generate_series(1, 1100, 7) g')");
$primary->safe_psql('postgres',
	"SELECT fs_write_query('tv', 'SELECT g, -g, now() FROM generate_series(1, 200, 3) g')");
check_standby('fs_write_query');

# more than 20,000 keys in one transaction: the whole view is invalidated
$primary->safe_psql('postgres',
	"SELECT fs_write_query('ds', 'SELECT g, g + 2000, now() FROM generate_series(1, 25000) g')");
check_standby('a whole-view write');
is(n_of($standby, 5), '2005', 'the large write is served');

$primary->safe_psql('postgres', q{
	UPDATE fstore_online.ds SET n = -n WHERE doc_id % 10 = 3;
	DELETE FROM fstore_online.ds WHERE doc_id % 10 = 4;
	INSERT INTO fstore_online.ds SELECT g, g, now() FROM generate_series(1080, 1099) g ON CONFLICT DO NOTHING;
	UPDATE fstore_online.tv SET m = 0, event_ts = now() WHERE doc_id % 4 = 1;
});
check_standby('plain DML');
is(n_of($standby, 13), '-2013', 'an UPDATE is served');
is(n_of($standby, 14), '-', 'a DELETE is served');

$primary->safe_psql('postgres', q{
	BEGIN;
	SELECT fs_write('ds', ARRAY[ROW(2, 999, now())]::fstore_online.ds[]);
	ROLLBACK;
	BEGIN;
	SELECT fs_write('ds', ARRAY[ROW(6, 606, now())]::fstore_online.ds[]);
	SAVEPOINT s;
	SELECT fs_write('ds', ARRAY[ROW(7, 707, now())]::fstore_online.ds[]);
	ROLLBACK TO s;
	COMMIT;
});
check_standby('rollbacks');
is(n_of($standby, 2) . ',' . n_of($standby, 6) . ',' . n_of($standby, 7), '2002,606,2007',
	'rolled back writes are not served, the committed one is');

# the stream path: events queued and applied (by fs_stream_apply or a worker)
$primary->safe_psql('postgres', q{
	INSERT INTO fstore_stream.ds (doc_id, n, event_ts)
	SELECT g, g + 7000, now() FROM generate_series(1, 50) g;
	SELECT fs_stream_apply('ds');
});
$primary->poll_query_until('postgres',
	'SELECT count(*) = 50 FROM fstore_online.ds WHERE doc_id <= 50 AND n = doc_id + 7000')
  or die 'the stream events were not applied';
check_standby('stream apply');
is(n_of($standby, 50), '7050', 'a streamed event is served');

$primary->safe_psql('postgres', 'TRUNCATE fstore_online.ds');
check_standby('TRUNCATE');
is(n_of($standby, 1), '-', 'the TRUNCATE is served');
$primary->safe_psql('postgres',
	"SELECT fs_write_query('ds', 'SELECT g, g * 3, now() FROM generate_series(1, 1000) g')");
check_standby('refill after TRUNCATE');

# drop and re-create the view under the same name, with other values
my $old_id = $primary->safe_psql('postgres',
	"SELECT view_id FROM fstore.feature_views WHERE name = 'ds'");
$primary->safe_psql('postgres', q{
	SELECT fs_drop_feature_view('ds');
	SELECT fs_create_feature_view('ds', 'doc', 'n bigint');
	SELECT fs_write_query('ds', 'SELECT g, g * 5, now() FROM generate_series(1, 900) g');
});
isnt($primary->safe_psql('postgres', "SELECT view_id FROM fstore.feature_views WHERE name = 'ds'"),
	$old_id, 'the re-created view has a new id');
check_standby('drop and re-create');
is(n_of($standby, 10), '50', 'the re-created view is served');

# ---- one transaction changing more whole views than a hold remembers ----

# nine views changed by plain DML in one transaction: the standby empties
# its cache and fills nothing until the writer is over
my @many = map { "m$_" } 1 .. 9;
$primary->safe_psql('postgres', join('', map {
	"SELECT fs_create_feature_view('$_', 'doc', 'x int');
	 SELECT fs_write_query('$_', 'SELECT g, g, now() FROM generate_series(1, 20) g');"
} @many));
$primary->wait_for_catchup($standby);
my $many_read = join(' UNION ALL ', map {
	"SELECT '$_', sum(x) FROM fs_get_many(NULL::fstore_online.$_, ARRAY[1, 2, 3, 25]::bigint[])"
} @many);
$standby->safe_psql('postgres', $many_read);
$standby->safe_psql('postgres', $many_read);
$primary->safe_psql('postgres', join('', 'BEGIN;', (map { "UPDATE fstore_online.$_ SET x = x + 100 WHERE doc_id <= 2;" } @many), 'COMMIT;'));
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats'), '0',
	'the ninth whole view emptied the standby cache');
is($standby->safe_psql('postgres', "SELECT string_agg(s::text, ',') FROM ($many_read) r(v, s)"),
	join(',', ('206') x 9), 'nine whole views changed in one transaction are served');
is($standby->safe_psql('postgres', "SELECT string_agg(s::text, ',') FROM ($many_read) r(v, s)"),
	join(',', ('206') x 9), 'and again');
check_standby('after nine whole views');

# ---- WAL records: one per writing transaction, none without a change ----

sub fstore_records
{
	my ($node, $sql) = @_;
	my $start = $node->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
	$node->safe_psql('postgres', $sql);
	my $end = $node->safe_psql('postgres', 'SELECT pg_current_wal_flush_lsn()');
	return 0 if $start eq $end;		# no WAL at all
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_get_wal_records_info('$start', '$end')
		 WHERE resource_manager = 'fstore'});
}

is(fstore_records($primary,
	"SELECT fs_write('ds', ARRAY[ROW(1, 1, now()), ROW(2, 2, now())]::fstore_online.ds[])"),
	1, 'a writing transaction logs one record');
is(fstore_records($primary,
	"SELECT * FROM fs_get_many(NULL::fstore_online.ds, ARRAY[1, 2]::bigint[])"),
	0, 'a read logs nothing');
is(fstore_records($primary,
	"SELECT fs_write('tv', ARRAY[ROW(2, 20, now() - interval '3 hours')]::fstore_online.tv[])"),
	0, 'a write that changes no row (late) logs nothing');
is(fstore_records($primary, 'UPDATE fstore_online.ds SET n = 0 WHERE false'),
	0, 'DML that changes no row logs nothing');
check_standby('after the record checks');

# ---- a standby reader whose fill crosses a replayed commit ----

# The reader misses key 3, reads the table, then waits (debug_fill_pause)
# before installing; meanwhile the primary changes key 3 and the standby
# replays it.  The late fill must not install the old row.
$standby->safe_psql('postgres', 'SELECT 1');
my $gate = $standby->background_psql('postgres');
$gate->query_safe('SELECT pg_advisory_lock(0, 4242)');
$primary->safe_psql('postgres',
	"SELECT fs_write('ds', ARRAY[ROW(3, 333, now())]::fstore_online.ds[])");
$primary->wait_for_catchup($standby);
my $reader = $standby->background_psql('postgres');
$reader->query_safe('SET fstore.debug_fill_pause = 4242');
$reader->query_until(qr/reading/, q{
\echo reading
SELECT 'old:' || n FROM fs_get_many(NULL::fstore_online.ds, ARRAY[3]::bigint[]);
});
$standby->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_stat_activity
	 WHERE wait_event_type = 'Lock' AND query LIKE '%old:%'})
  or die 'the reader did not reach its fill';
$primary->safe_psql('postgres',
	"SELECT fs_write('ds', ARRAY[ROW(3, 334, now())]::fstore_online.ds[])");
$primary->wait_for_catchup($standby);
$gate->query_safe('SELECT pg_advisory_unlock(0, 4242)');
$reader->query_safe('SELECT 1');
$reader->quit;
$gate->quit;
is(n_of($standby, 3), '334', 'a fill that read before a replayed commit is not installed');
is(n_of($standby, 3), '334', 'and the next reads serve the new row');

# ---- concurrent writes on the primary while the standby reads ----

# One writer raises n of keys 1..40, one commit at a time; every standby
# read compares fs_get_many with the table in the same statement: the
# statement's snapshot is older than the call, so fs_get_many may be newer
# but never older than the table.
my $race_read = q{
	WITH k AS (SELECT array_agg(g::bigint ORDER BY g) AS keys FROM generate_series(1, 40) g)
	SELECT count(*) FILTER (WHERE f.n < t.n OR (f.n IS NULL AND t.n IS NOT NULL)) FROM (
		SELECT row_number() OVER () AS i, f.n FROM k, fs_get_many(NULL::fstore_online.ds, k.keys) f
	) f JOIN (
		SELECT u.i, o.n FROM k, unnest(k.keys) WITH ORDINALITY u(key, i)
		LEFT JOIN fstore_online.ds o ON o.doc_id = u.key
	) t USING (i)};

sub race
{
	my ($base, $rounds) = @_;
	my $writer = $primary->background_psql('postgres');
	$writer->query_until(qr/writing/, qq{
\\echo writing
DO \$\$
BEGIN
	FOR i IN 1 .. 1500 LOOP
		PERFORM fs_write('ds', ARRAY[ROW(i % 40 + 1, $base + i, clock_timestamp()),
									 ROW((i + 20) % 40 + 1, $base + i, clock_timestamp())]::fstore_online.ds[]);
		COMMIT;
	END LOOP;
END
\$\$;
});
	my $stale = 0;
	for (1 .. $rounds)
	{
		$stale += $standby->safe_psql('postgres', $race_read);
	}
	$writer->query_safe('SELECT 1');	# waits for the loop
	$writer->quit;
	$primary->wait_for_catchup($standby);
	$stale += $standby->safe_psql('postgres', $race_read);
	return $stale;
}

my $h0 = hits($standby, 'ds');
is(race(100000, 150), 0, 'no stale answer while the standby replays 1,500 commits');
ok(hits($standby, 'ds') > $h0, 'the standby served hits during the race');
check_standby('after the race');

# ---- without the invalidations the standby is stale ----

$standby->append_conf('postgresql.conf', 'fstore.debug_skip_standby_invalidation = on');
$standby->reload;
$standby->poll_query_until('postgres',
	"SELECT current_setting('fstore.debug_skip_standby_invalidation') = 'on'");
is(mismatches($standby, 'ds', 'n'), 0, 'debug switch on: the cache is warm and right');
ok(race(200000, 40) > 0, 'debug switch on: the race check sees stale answers');
$primary->safe_psql('postgres',
	"SELECT fs_write('ds', ARRAY[ROW(1, 424242, now())]::fstore_online.ds[])");
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT n FROM fstore_online.ds WHERE doc_id = 1'), '424242',
	'debug switch on: the table has the new row');
isnt(n_of($standby, 1), '424242', 'debug switch on: the standby serves the stale row');

$standby->append_conf('postgresql.conf', 'fstore.debug_skip_standby_invalidation = off');

# ---- standby restart: the cache starts empty, then fills again ----

$standby->restart;
is($standby->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats'), '0',
	'the standby cache is empty after a restart');
$primary->safe_psql('postgres',
	"SELECT fs_write('ds', ARRAY[ROW(4, 444, now())]::fstore_online.ds[])");
check_standby('after a standby restart');
is(n_of($standby, 1), '424242', 'the row missed while the switch was on is served now');

# ---- a primary without a cache still logs for its standbys ----

$primary->append_conf('postgresql.conf', 'fstore.cache_size = 0');
$primary->restart;
$primary->wait_for_catchup($standby);
is($primary->safe_psql('postgres', 'SELECT size_bytes IS NULL FROM fstore.cache_stats'), 't',
	'the primary has no cache');
check_standby('warm before the primary writes without a cache');
is(fstore_records($primary,
	"SELECT fs_write('ds', ARRAY[ROW(5, 555, now())]::fstore_online.ds[])"),
	1, 'a primary without a cache logs its writes');
check_standby('a write on a primary without a cache');
is(n_of($standby, 5), '555', 'and the standby serves it');

# Prepared transactions (allowed without a cache on the primary): the keys
# stay held on the standby until COMMIT PREPARED is replayed, so a read in
# between cannot install the old row.
$primary->safe_psql('postgres', q{
	BEGIN;
	SELECT fs_write('ds', ARRAY[ROW(48, 888, now())]::fstore_online.ds[]);
	PREPARE TRANSACTION 'p1';
});
$primary->wait_for_catchup($standby);
is(n_of($standby, 48), '240', 'a prepared write is not visible on the standby');
is(n_of($standby, 48), '240', 'nor on the second read');
$primary->safe_psql('postgres', "COMMIT PREPARED 'p1'");
check_standby('COMMIT PREPARED');
is(n_of($standby, 48), '888', 'the committed prepared write is served');

# The record of a prepared transaction precedes the point the standby
# restarts from: redo cannot see it, and fills wait until the transaction
# is over.
$primary->safe_psql('postgres', q{
	BEGIN;
	SELECT fs_write('ds', ARRAY[ROW(49, 999, now())]::fstore_online.ds[]);
	PREPARE TRANSACTION 'p2';
	CHECKPOINT;
});
$primary->wait_for_catchup($standby);
$standby->safe_psql('postgres', 'CHECKPOINT');
$standby->restart;
# (another view: the prepared transaction keeps the writers of ds waiting)
$primary->safe_psql('postgres',
	"SELECT fs_write('tv', ARRAY[ROW(50, 1010, now())]::fstore_online.tv[])");
$primary->wait_for_catchup($standby);
is(n_of($standby, 49), '245', 'before COMMIT PREPARED (after a standby restart): the old row');
is(n_of($standby, 49), '245', 'and again');
$primary->safe_psql('postgres', "COMMIT PREPARED 'p2'");
$primary->wait_for_catchup($standby);
is(n_of($standby, 49), '999', 'COMMIT PREPARED replayed after a standby restart is served');
check_standby('after the restart with a prepared transaction');

# A primary crash: records written before it are replayed by the primary's
# crash recovery and stay valid on the standby.
$primary->safe_psql('postgres', q{
	SELECT fs_write('ds', ARRAY[ROW(51, 1111, now())]::fstore_online.ds[]);
	BEGIN;
	SELECT fs_write('ds', ARRAY[ROW(52, 1212, now())]::fstore_online.ds[]);
	PREPARE TRANSACTION 'p3';
	BEGIN;
	SELECT fs_write('tv', ARRAY[ROW(55, 1515, now())]::fstore_online.tv[]);
	PREPARE TRANSACTION 'p4';
});
$primary->wait_for_catchup($standby);
is(n_of($standby, 52), '260', 'prepared before the crash: old row');
is($standby->safe_psql('postgres', 'SELECT coalesce(m, 0) FROM fs_get_many(NULL::fstore_online.tv, ARRAY[55]::bigint[])'),
	'-55', 'prepared before the crash: old row of tv');
$primary->stop('immediate');
$primary->start;
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts"), '2',
	'the primary recovered from the crash');
$primary->safe_psql('postgres', "COMMIT PREPARED 'p3'");
$primary->safe_psql('postgres', "ROLLBACK PREPARED 'p4'");
check_standby('after a primary crash');
is(n_of($standby, 51) . ',' . n_of($standby, 52), '1111,1212',
	'writes around the crash are served right');

# ---- promotion: the standby becomes a primary and keeps a valid cache ----

$primary->append_conf('postgresql.conf', "fstore.cache_size = '16MB'");
$primary->restart;
$primary->wait_for_catchup($standby);
check_standby('before promotion');
$primary->stop;
my $entries = $standby->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'promotion did not finish';
is($standby->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats'), $entries,
	'the promoted standby keeps its cache');
my $hp = hits($standby, 'ds');
is(mismatches($standby, 'ds', 'n'), 0, 'promoted: answers equal the table');
ok(hits($standby, 'ds') > $hp, 'promoted: served from the kept cache');
$standby->safe_psql('postgres', q{
	SELECT fs_write('ds', ARRAY[ROW(1, -1, now()), ROW(2000, 2, now())]::fstore_online.ds[]);
	UPDATE fstore_online.ds SET n = n + 1 WHERE doc_id BETWEEN 100 AND 110;
});
is(mismatches($standby, 'ds', 'n'), 0, 'promoted: writes on the new primary are served right');
is(mismatches($standby, 'tv', 'm', '1 hour'), 0, 'promoted: tv too');
is(n_of($standby, 1), '-1', 'promoted: its own write is served');

$standby->stop;
done_testing();
