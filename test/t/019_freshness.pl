# fstore.freshness kept in shared memory and written to fstore.view_state
# about once a second (src/stats/freshness.c): what committed shows at
# once; the stream worker writes to the table what writers left unwritten,
# without waiting for a row another transaction holds; a restart keeps it;
# a crash may show a view as older, never as newer, than what committed;
# prepared transactions arrive with COMMIT PREPARED, never with ROLLBACK
# PREPARED; aggregation views the same.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('freshness');
$node->init;
# no hot cache: PREPARE TRANSACTION is refused after a write while it is on
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.cache_size = 0
fstore.stream_workers = 1
fstore.stream_idle_timeout = 120
max_prepared_transactions = 4
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('w', 'doc', 'a int');
	SELECT fs_create_feature_view('q', 'doc', 'a int');
	SELECT fs_create_aggregation_view('agg', 'doc', events => 'clicks int',
	    aggregations => ARRAY['sum(clicks) OVER 1 hour AS clicks_1h']);
	CREATE PROCEDURE small_writes(first int, n int) LANGUAGE plpgsql AS $$
	BEGIN
	    FOR i IN first .. first + n - 1 LOOP
	        PERFORM fs_write('w', ARRAY[ROW(i % 10, i, '2026-01-01'::timestamptz + i * interval '1 minute')]::fstore_online.w[]);
	        COMMIT;
	    END LOOP;
	END
	$$;
});

sub fresh
{
	my ($view) = @_;
	return $node->safe_psql('postgres',
		"SELECT last_event_ts FROM fstore.freshness WHERE view_name = '$view'");
}

sub row_of
{
	my ($view, $table) = @_;
	$table //= 'view_state';
	my $names = $table eq 'view_state' ? 'feature_views' : 'aggregation_views';
	return $node->safe_psql('postgres',
		"SELECT s.last_event_ts FROM fstore.$table s JOIN fstore.$names v USING (view_id) WHERE v.name = '$view'");
}

sub ts_of
{
	my ($i) = @_;
	return $node->safe_psql('postgres',
		"SELECT '2026-01-01'::timestamptz + $i * interval '1 minute'");
}

# a worker for this database: events in a queue ask the launcher for one
$node->safe_psql('postgres', 'INSERT INTO fstore_stream.q VALUES (1, 1, now())');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM fstore_online.q'),
	'a stream worker runs in the database');

# ---------------------------------------------------------------------------
# 1. Many small writes: each shows at once; the worker writes the rest to
#    the table shortly after.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'CALL small_writes(1, 200)');
is(fresh('w'), ts_of(200), 'the last of 200 committed writes shows at once');
ok($node->poll_query_until('postgres',
	"SELECT s.last_event_ts = '@{[ts_of(200)]}' FROM fstore.view_state s JOIN fstore.feature_views v USING (view_id) WHERE v.name = 'w'"),
	'the stream worker writes the state to fstore.view_state');

# ---------------------------------------------------------------------------
# 2. A row held by another transaction: the worker does not wait for it
#    (queued events keep being applied) and writes it once it is free.
# ---------------------------------------------------------------------------
# two writes a moment apart: the first writes the row (if a second has
# passed since the worker did), the second leaves it to the worker
$node->safe_psql('postgres', 'CALL small_writes(299, 2)');
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN; SELECT 1 FROM fstore.view_state s JOIN fstore.feature_views v USING (view_id)
	WHERE v.name = 'w' FOR UPDATE});
my $held = row_of('w');
is(fresh('w'), ts_of(300), 'the last write shows while the row is held');
sleep 3;					# the worker has tried to write the row
$node->safe_psql('postgres', 'INSERT INTO fstore_stream.q SELECT g, g, now() FROM generate_series(2, 50) g');
ok($node->poll_query_until('postgres', 'SELECT count(*) = 50 FROM fstore_online.q'),
	'the worker keeps applying events while the row is held');
is(row_of('w'), $held, 'the held row is not written');
$holder->query_safe('COMMIT');
$holder->quit;
ok($node->poll_query_until('postgres',
	"SELECT s.last_event_ts = '@{[ts_of(300)]}' FROM fstore.view_state s JOIN fstore.feature_views v USING (view_id) WHERE v.name = 'w'"),
	'the row is written once it is free');

# ---------------------------------------------------------------------------
# 3. A restart keeps what was written.
# ---------------------------------------------------------------------------
$node->restart;
is(fresh('w'), ts_of(300), 'after a restart');

# ---------------------------------------------------------------------------
# 4. Prepared transactions: the state arrives with COMMIT PREPARED, and not
#    with ROLLBACK PREPARED.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', qq{
	BEGIN;
	SELECT fs_write('w', ARRAY[ROW(2, 2, '@{[ts_of(400)]}')]::fstore_online.w[]);
	PREPARE TRANSACTION 'p1';
});
is(fresh('w'), ts_of(300), 'a prepared write does not show');
$node->safe_psql('postgres', q{COMMIT PREPARED 'p1'});
is(fresh('w'), ts_of(400), 'it shows once committed');
$node->safe_psql('postgres', qq{
	BEGIN;
	SELECT fs_write('w', ARRAY[ROW(3, 3, '@{[ts_of(500)]}')]::fstore_online.w[]);
	PREPARE TRANSACTION 'p2';
});
$node->safe_psql('postgres', q{ROLLBACK PREPARED 'p2'});
is(fresh('w'), ts_of(400), 'a prepared write rolled back never shows');

# ---------------------------------------------------------------------------
# 5. Aggregation views: the same, in fstore.aggregation_state.
# ---------------------------------------------------------------------------
# (events within the windows' retention: recent ones)
my $base = $node->safe_psql('postgres', q{SELECT date_trunc('second', now()) - interval '10 minutes'});
my $agg_ts = sub {
	return $node->safe_psql('postgres', "SELECT '$base'::timestamptz + $_[0] * interval '1 second'");
};
for my $i (1 .. 30)
{
	$node->safe_psql('postgres',
		"SELECT fs_write('agg', ARRAY[ROW(1, 1, '@{[$agg_ts->($i)]}')]::fstore_stream.agg[])");
}
is(fresh('agg'), $agg_ts->(30), 'an aggregation view shows its last write');
ok($node->poll_query_until('postgres',
	"SELECT s.last_event_ts = '@{[$agg_ts->(30)]}' FROM fstore.aggregation_state s JOIN fstore.aggregation_views v USING (view_id) WHERE v.name = 'agg'"),
	'and fstore.aggregation_state gets it');

# ---------------------------------------------------------------------------
# 6. A crash right after many writes: the view may show older, never newer.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'CALL small_writes(600, 100)');
is(fresh('w'), ts_of(699), 'before the crash');
$node->stop('immediate');
$node->start;
my $after = fresh('w');
ok($node->safe_psql('postgres', "SELECT '$after'::timestamptz BETWEEN '@{[ts_of(400)]}' AND '@{[ts_of(699)]}'"),
	"after a crash: $after, between the last state written before the writes and the last write");
is($node->safe_psql('postgres', 'SELECT max(event_ts) FROM fstore_online.w'), ts_of(699),
	'the rows themselves are all there');
$node->safe_psql('postgres',
	"SELECT fs_write('w', ARRAY[ROW(4, 4, '@{[ts_of(800)]}')]::fstore_online.w[])");
is(fresh('w'), ts_of(800), 'the next write shows');

# ---------------------------------------------------------------------------
# 7. A dropped view's shared entry goes.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', q{SELECT fs_drop_feature_view('w')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM fstore._freshness() f
	WHERE NOT EXISTS (SELECT 1 FROM fstore.feature_views v WHERE v.view_id = f.view_id)
	  AND NOT EXISTS (SELECT 1 FROM fstore.aggregation_views v WHERE v.view_id = f.view_id)}),
	'0', 'no shared entry of a dropped view');

$node->stop;
done_testing();
