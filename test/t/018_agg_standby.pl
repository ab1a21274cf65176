# Aggregation views on a hot standby: after replay, the standby's reads of
# the windows (fs_get_many_at at a fixed time, fs_get_many and a feature
# service mixing an aggregation view with a feature view, at now()) equal
# the primary's, for tiles written by fs_write, by the stream workers and
# by late events into existing tiles; training sets are not built on a
# standby (they create tables) but their query runs there and agrees.
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
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('ds', 'doc', 'quality real');
	SELECT fs_create_aggregation_view('act', 'doc', events => 'clicks int, user_id bigint',
	    aggregations => ARRAY['count(*) OVER 1 hour AS opens_1h',
	                          'sum(clicks) OVER 1 day AS clicks_1d',
	                          'max(clicks) OVER 1 day AS clicks_max_1d',
	                          'count(DISTINCT user_id) OVER 1 day AS users_1d',
	                          'approx_count_distinct(user_id) OVER 1 day AS users_approx_1d']);
	SELECT fs_create_feature_service('svc', ARRAY['ds.quality', 'act.opens_1h', 'act.users_approx_1d']);
	SELECT fs_write_query('ds', 'SELECT g, g / 10.0, now() FROM generate_series(1, 200) g');
	-- 200 keys, events from 2 minutes to 20 hours old (never near an edge of
	-- the 1-hour window: minutes 2-50 and 70-1200)
	SELECT fs_write('act', ARRAY(
	    SELECT ROW(k, (k * i) % 17, (k * 31 + i) % 97,
	               now() - make_interval(mins => CASE WHEN i % 3 = 0 THEN 70 + (k * i) % 1100 ELSE 2 + (k + i) % 48 END))::fstore_stream.act
	      FROM generate_series(1, 200) k, generate_series(1, 25) i));
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# a fixed read time, after every event written below
my $at = $primary->safe_psql('postgres', "SELECT now() + interval '1 minute'");

sub windows_at
{
	my ($node) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(format('%s:%s:%s:%s:%s:%s', doc_id, opens_1h, clicks_1d, clicks_max_1d,
		                         users_1d, users_approx_1d), ' ' ORDER BY doc_id)
		  FROM fs_get_many_at(NULL::fstore_online.act,
		                      ARRAY(SELECT g::bigint FROM generate_series(1, 210) g), '$at')});
}

sub windows_now
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
		SELECT string_agg(format('%s:%s:%s:%s', doc_id, opens_1h, clicks_1d, users_approx_1d), ' ' ORDER BY doc_id)
		  FROM fs_get_many(NULL::fstore_online.act, ARRAY(SELECT g::bigint FROM generate_series(1, 210) g))});
}

sub service_now
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
		SELECT string_agg(format('%s:%s:%s:%s', doc_id, quality, opens_1h, users_approx_1d), ' ' ORDER BY doc_id)
		  FROM fs_get_many(NULL::fstore_online.svc, ARRAY(SELECT g::bigint FROM generate_series(1, 210) g))});
}

my $last = '';

sub compare
{
	my ($what) = @_;
	$primary->wait_for_catchup($standby);
	my $p = windows_at($primary);
	my $s = windows_at($standby);
	ok(length($p) > 1000, "$what: the primary has windows");
	isnt($p, $last, "$what: the windows changed");
	$last = $p;
	is($s, $p, "$what: the standby's windows at a fixed time equal the primary's");
	is(windows_now($standby), windows_now($primary), "$what: fs_get_many at now() agrees");
	is(service_now($standby), service_now($primary), "$what: the mixed service agrees");
}

compare('after fs_write');

# the stream path (workers drain the queue on the primary; the tiles replay)
$primary->safe_psql('postgres', q{
	INSERT INTO fstore_stream.act
	SELECT k, 5, 1000 + k, now() - interval '4 minutes' FROM generate_series(1, 210) k;
});
$primary->poll_query_until('postgres', "SELECT fs_stream_wait('act', '30 seconds')")
  or die "the stream workers did not drain the queue";
is($primary->safe_psql('postgres', 'SELECT count(*) FROM fstore_stream.act'), '0', 'queue drained');
compare('after the stream');

# late events into existing tiles, and a new key
$primary->safe_psql('postgres', q{
	SELECT fs_write('act', ARRAY(
	    SELECT ROW(k, 100, 5000 + k, now() - interval '10 hours')::fstore_stream.act
	      FROM generate_series(1, 210, 7) k));
});
compare('after late events');

# the training set's query runs on the standby and gives the same rows
my $q = $primary->safe_psql('postgres', qq{
	SELECT fs_training_set_query('SELECT g::bigint AS doc_id, ''$at''::timestamptz AS event_ts FROM generate_series(1, 210) g',
	                             ARRAY['svc'])});
my $tq = "SELECT md5(string_agg(t::text, ',' ORDER BY t.doc_id)) FROM ($q) t";
is($standby->safe_psql('postgres', $tq), $primary->safe_psql('postgres', $tq),
	'a training set through the service: the same rows on both');

# reads on the standby are counted in its own fstore.stats
my $before = $standby->safe_psql('postgres', "SELECT lookups FROM fstore.stats WHERE view_name = 'act'");
windows_now($standby);
is($standby->safe_psql('postgres', "SELECT lookups FROM fstore.stats WHERE view_name = 'act'"),
	$before + 1, "the standby counts its reads");
is($standby->safe_psql('postgres', "SELECT last_event_ts IS NOT NULL FROM fstore.freshness WHERE view_name = 'act'"),
	't', "the standby's fstore.freshness shows the replayed state");

$standby->stop;
$primary->stop;
done_testing();
