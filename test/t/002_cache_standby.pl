# fs_get_many on a streaming hot standby answers what the standby's own
# tables hold, never from a stale cache, as changes stream in from the
# primary.
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
	SELECT fs_create_feature_view('ds', 'doc', 'n int');
	SELECT fs_write_query('ds', 'SELECT g, g, now() FROM generate_series(1, 1000) g');
});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf', "fstore.cache_size = '16MB'");
$standby->start;
$primary->wait_for_catchup($standby);

my $read = q{SELECT string_agg(coalesce(n::text, '-'), ',' ORDER BY ord)
	FROM fs_get_many(NULL::fstore_online.ds, ARRAY[1, 2, 500, 2000]::bigint[]) WITH ORDINALITY AS f(doc_id, n, event_ts, ord)};

is($standby->safe_psql('postgres', $read), '1,2,500,-', 'standby answers from its tables');
is($standby->safe_psql('postgres', $read), '1,2,500,-', 'and again');

for my $round (1 .. 5)
{
	$primary->safe_psql('postgres',
		"SELECT fs_write('ds', ARRAY[ROW(1, 100 + $round, now()), ROW(2000, $round, now())]::fstore_online.ds[])");
	$primary->safe_psql('postgres', "UPDATE fstore_online.ds SET n = -$round WHERE doc_id = 500");
	$primary->wait_for_catchup($standby);
	is($standby->safe_psql('postgres', $read), (100 + $round) . ",2,-$round,$round",
		"standby sees round $round once replayed");
	is($primary->safe_psql('postgres', $read), (100 + $round) . ",2,-$round,$round",
		"primary (with its cache) agrees in round $round");
}

$primary->safe_psql('postgres', 'TRUNCATE fstore_online.ds');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $read), '-,-,-,-', 'standby sees the TRUNCATE');

# the standby answers from its own cache, kept exact by replaying the
# primary's invalidations (test/t/017_standby_cache.pl goes further)
is($standby->safe_psql('postgres', $read), '-,-,-,-', 'and again, from its cache');
ok($standby->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats') > 0,
	'the standby fills its cache');
ok($standby->safe_psql('postgres',
	"SELECT cache_hits FROM fstore.stats WHERE view_name = 'ds'") > 0,
	'the standby reports cache hits');

$standby->stop;
$primary->stop;
done_testing();
