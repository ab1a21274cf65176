# fstore's own encoder of binary result rows (fstore.fast_output) sends
# exactly what the server's encoder sends: every field of fs_get_many (views
# and services, every common type, NULLs, special values, misses) and of
# fs_get_many_packed, compared byte for byte with fast_output off, in binary
# and in text; and it is really used for those queries and only for them.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# build the client
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $incdir = `pg_config --includedir`;
my $libdir = `pg_config --libdir`;
chomp($incdir, $libdir);
my $src = ($ENV{FS_ROOT} // '.') . '/test/t/binary_rows.c';
system('cc', '-O1', '-Wall', '-o', "$tmp/binary_rows", $src, "-I$incdir", "-L$libdir", '-lpq') == 0
  or BAIL_OUT('cannot build binary_rows');

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.cache_size = '16MB'
fstore.max_keys_per_call = 100000
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION fstore;
	SELECT fs_create_entity('e', 'id bigint');
	CREATE DOMAIN posint AS int CHECK (VALUE > 0);
	SELECT fs_create_feature_view('every', 'e',
		'b bool, i2 smallint, i4 int, i8 bigint, f4 real, f8 double precision, d date,
		 ts timestamp, o oid, by bytea, t text, n numeric, a real[], u uuid, p public.posint');
	SELECT fs_write_query('every', $$
		SELECT 1, true, 32767::int2, -2147483648, 9223372036854775807, 'NaN'::real, '-0'::float8,
		       '2000-01-01'::date, 'infinity'::timestamp, 4294967295::oid, ''::bytea, 'é ü 漢',
		       1.5e-30::numeric, ARRAY[1.5, -2]::real[], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, 7,
		       '2024-01-02 03:04:05.678901+00'::timestamptz
		UNION ALL
		SELECT 2, false, (-32768)::int2, 0, -1, '-Infinity'::real, 1e308::float8,
		       '-infinity'::date, '1999-12-31 23:59:59.999999'::timestamp, 0::oid,
		       decode(repeat('00ff', 3000), 'hex'), repeat('x', 5000), 'NaN'::numeric,
		       '{}'::real[], NULL, NULL, '1970-01-01 00:00:00.000001+00'::timestamptz
		UNION ALL
		SELECT 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		       NULL, NULL, NULL, now()
		UNION ALL
		SELECT g, g % 2 = 0, g::int2, g, g * 1000000000000, g / 7.0, g / 3.0, '2020-01-01'::date + g,
		       '2020-01-01'::timestamp + g * interval '1 s', g, int8send(g), 'row ' || g, g / 9.0,
		       ARRAY[g, g]::real[], NULL, g, '2020-01-01'::timestamptz + g * interval '1 ms'
		  FROM generate_series(4, 300) g
		$$);
	SELECT fs_create_feature_view('packable', 'e', 'x real, y int, z bytea');
	SELECT fs_write_query('packable', $$
		SELECT g, g / 4.0, CASE WHEN g % 5 <> 0 THEN g END, int4send(g::int), now() FROM generate_series(1, 200) g $$);
	SELECT fs_create_feature_service('svc', ARRAY['every.i4', 'every.t', 'packable.x']);
});

my $keys = "ARRAY[1, 2, 3, 999, NULL, 1, 4, 5, 300, 150, 2]::bigint[]";
my @queries = (
	"SELECT * FROM fs_get_many(NULL::fstore_online.every, $keys)",
	"SELECT * FROM fs_get_many(NULL::fstore_online.every, $keys)",	# from the cache now
	"SELECT * FROM fs_get_many(NULL::fstore_online.every, (SELECT array_agg(g::bigint) FROM generate_series(1, 320) g))",
	"SELECT * FROM fs_get_many(NULL::fstore_online.packable, $keys)",
	"SELECT * FROM fs_get_many(NULL::fstore_online.svc, $keys)",
	"SELECT fs_get_many_packed(NULL::fstore_online.packable, $keys)",
	"SELECT fs_get_many_packed(NULL::fstore_online.packable, (SELECT array_agg(g::bigint) FROM generate_series(1, 210) g))",
	"SELECT fs_get_many_packed(NULL::fstore_online.packable, NULL::bigint[])",
	"SELECT i4, t FROM fs_get_many(NULL::fstore_online.every, $keys)",
	# results larger than what fstore queues in the send buffer (1MB): the
	# first rows queued, the rest sent the usual way, in order
	"SELECT * FROM fs_get_many(NULL::fstore_online.every, (SELECT array_agg((g % 3 + 1)::bigint) FROM generate_series(1, 450) g))",
	"SELECT fs_get_many_packed(NULL::fstore_online.packable, (SELECT array_agg((g % 200 + 1)::bigint) FROM generate_series(1, 60000) g))",
	# not a call of ours: the server's encoder
	"SELECT * FROM fstore_online.every ORDER BY id",
	"SELECT * FROM fs_get_many(NULL::fstore_online.every, $keys) WITH ORDINALITY",
);
my $conninfo = $node->connstr('postgres');
my ($out, $err);
my $ok = IPC::Run::run([ "$tmp/binary_rows", $conninfo, @queries ], '>', \$out, '2>', \$err);
ok($ok, 'every field is the same with fstore.fast_output on and off') or diag("$out\n$err");

my %lines = map { /^query (\d+) format (\d+): (.*)$/ ? ("$1/$2" => $3) : () } split /\n/, $out;
# binary results of our calls go through fstore's encoder, text ones never
for my $q (1 .. 11)
{
	like($lines{"$q/1"} // '', qr/ rows, 1 fast$/, "query $q in binary uses fstore's encoder");
	like($lines{"$q/0"} // '', qr/ rows, 0 fast$/, "query $q in text does not");
}
for my $q (12, 13)
{
	like($lines{"$q/1"} // '', qr/ rows, 0 fast$/, "query $q (not a plain call) does not");
	like($lines{"$q/0"} // '', qr/ rows, 0 fast$/, "query $q in text does not");
}
like($lines{'1/1'} // '', qr/^11 rows/, 'one row per key, misses and NULL keys included');
like($lines{'3/1'} // '', qr/^320 rows/, 'a larger batch');
like($lines{'10/1'} // '', qr/^450 rows/, 'a typed result of more than 1MB');
like($lines{'11/1'} // '', qr/^1 rows/, 'a packed result of more than 1MB');

$node->stop;
done_testing();
