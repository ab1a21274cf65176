# The hot cache after a restart, and under churn: ten times more distinct
# keys than fit, with writes in between.  Shared memory stays the same size
# and every answer matches the table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('churn');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.cache_size = '4MB'
});
$node->start;

# 4MB holds a fraction of the 120,000 keys of this view
$node->safe_psql('postgres', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('doc', 'doc_id bigint');
	SELECT fs_create_feature_view('big', 'doc', 'a real, b real, c text, v real[]');
	SELECT fs_write_query('big', 'SELECT g, g * 0.5, g * 0.25, repeat(''x'', g % 50), ARRAY[g, g + 1]::real[], now() FROM generate_series(1, 120000) g');
});

my $shmem = q{SELECT size FROM pg_shmem_allocations WHERE name = 'fstore cache'};
my $size0 = $node->safe_psql('postgres', $shmem);
ok($size0 > 4 * 1024 * 1024, "cache segment allocated ($size0 bytes)");

# a request compared with plain SQL: any difference is a wrong answer
my $check = q{
	WITH k AS (SELECT array_agg((1 + floor(random() * 130000))::bigint) AS keys FROM generate_series(1, 2000))
	SELECT count(*) FROM (
		SELECT row_number() OVER () AS i, f.* FROM k, fs_get_many(NULL::fstore_online.big, k.keys) f
	) f JOIN (
		SELECT i, o.* FROM k, unnest(k.keys) WITH ORDINALITY u(key, i)
		LEFT JOIN fstore_online.big o ON o.doc_id = u.key
	) t USING (i)
	WHERE (f.a, f.b, f.c, f.v, f.event_ts) IS DISTINCT FROM (t.a, t.b, t.c, t.v, t.event_ts)
	   OR f.doc_id IS DISTINCT FROM u_key(t)
};
$check =~ s/u_key\(t\)/coalesce(t.doc_id, (SELECT keys[t.i] FROM k))/;

my $wrong = 0;
for my $round (1 .. 60)
{
	$wrong += $node->safe_psql('postgres', $check);
	if ($round % 10 == 0)
	{
		# writes between the rounds: some keys change, some are deleted
		$node->safe_psql('postgres', qq{
			SELECT fs_write_query('big', 'SELECT g, g * 0.5 + $round, g * 0.25, ''r$round'', NULL, now() FROM generate_series($round, 120000, 97) g');
			DELETE FROM fstore_online.big WHERE doc_id % 1009 = $round;
		});
	}
}
is($wrong, 0, 'no wrong answer in 60 rounds of 2,000 random keys');

my ($entries, $evictions) = split /\|/, $node->safe_psql('postgres',
	'SELECT entries, evictions FROM fstore.cache_stats');
ok($evictions > 50000, "the cache evicted ($evictions entries)");
ok($entries > 1000 && $entries < 60000, "it holds only what fits ($entries entries of 120,000 keys)");
is($node->safe_psql('postgres', $shmem), $size0, 'shared memory size unchanged');
my ($hits, $misses) = split /\|/, $node->safe_psql('postgres',
	"SELECT cache_hits, cache_misses FROM fstore.stats WHERE view_name = 'big'");
ok($hits > 0 && $misses > 0, "hits ($hits) and misses ($misses) counted");

# restart: the cache starts empty and fills again; answers stay right
$node->restart;
is($node->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats'), '0',
	'empty after a restart');
# counters start again from 0, and read 0 (not NULL) for a view nothing
# has touched since the restart
is($node->safe_psql('postgres', q{
	SELECT lookups, keys_requested, cache_hits, cache_misses, evictions,
	       rows_written, rows_unchanged, rows_late, stream_applied,
	       stream_batches, dead_letters
	  FROM fstore.stats WHERE view_name = 'big'}),
	'0|0|0|0|0|0|0|0|0|0|0', 'counters read 0 after a restart');
is($node->safe_psql('postgres', $check), '0', 'right answers after the restart');
ok($node->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats') > 0,
	'and it fills again');
is($node->safe_psql('postgres', $check), '0', 'right answers from the refilled cache');

# immediate shutdown (crash): same
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT entries FROM fstore.cache_stats'), '0',
	'empty after crash recovery');
is($node->safe_psql('postgres', $check), '0', 'right answers after crash recovery');

$node->stop;
done_testing();
