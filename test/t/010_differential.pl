# Differential test of every write path against a reference model of the
# write rules (test/t/FsModel.pm, which spells the rules out).
#
# A seeded generator drives six feature views (bigint, text and composite
# keys; int, real, double precision, text, int[], real[] and json features,
# NULLs, 0 and -0, NaN, large json and text values stored compressed or out
# of line; views without a ttl, with a ttl that never expires and with one
# that expires about half the values) through:
#   - fs_write (ARRAY[ROW(...)]::fstore_online.v[]),
#   - fs_write_query over a staging table (typed, or cast from text) or over
#     VALUES,
#   - fs_materialize over a source table, with random and repeated windows,
#     with and without since/until (the watermark), a source row with a
#     NULL key (the run fails) and corrected source rows,
#   - the stream queue, drained in the session (fs_stream_apply, with and
#     without max_rows) and by the background worker (fs_stream_wait); the
#     queue's physical order, read before the commit, is the input order,
#     split in batches of fstore.stream_batch_size; NULL keys are dead letters,
#   - several calls in one transaction (with a failing call rolled back to a
#     savepoint, a read of the transaction's own writes, COMMIT or ROLLBACK),
#   - plain INSERT/UPDATE (also of the key)/DELETE/TRUNCATE on the online
#     table,
# with small key and timestamp domains so that ties, repeats, confirmations
# and late rows are common (now and then a few thousand keys), batches of 1
# to 20,000 rows, NULL keys and event_ts (error 23502, nothing applied), and
# batches built to put fs_write_query's and fs_materialize's fetch boundary
# (10,000 rows) inside one key.  After every call it compares with the
# model: the counts the call returns, the whole online table, the whole
# history (a multiset, compared through a digest; dumped and diffed on a
# mismatch), fs_get_many over existing, missing, NULL and repeated keys with
# the cache off, on, and on again, fstore.stats' write counters, the dead
# letters, the watermark, and (through a row trigger) how many online rows
# were inserted or updated: never for unchanged rows, once per key and call.
#
# Environment:
#   FS_DIFF_SEED=1,2,...  run these seeds (default: the CI seeds)
#   FS_DIFF_ROUNDS=n      rounds per seed
#   FS_DIFF_SECONDS=n     soak: run seeds (from FS_DIFF_SEED, else from the
#                         clock) for n seconds, print figures at the end
#   FS_DIFF_NO_BIG_JSON=1 no json values over 2 kB (to look past the bug
#                         that compares them as raw bytes; never in CI)
#   FS_DIFF_KEEP=1        keep each seed's database
#   FS_DIFF_LOG=1         write every SQL script a seed runs to
#                         <tmp_check>/diff_<seed>.sql (for shrinking)
# A failure names the seed and the round; FS_DIFF_SEED=<seed> reruns it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FsModel;

my $SOAK = $ENV{FS_DIFF_SECONDS} // 0;
my @CI_SEEDS = (1, 2, 3);
my $ROUNDS = $ENV{FS_DIFF_ROUNDS} // ($SOAK ? 300 : 70);
my $LOG = $ENV{FS_DIFF_LOG};

use constant {
	FETCH => 10000,          # rows fs_write_query / fs_materialize fetch at a time
	BATCH => 4000,           # fstore.stream_batch_size of the cluster
	STEP => 3_600_000_000,   # one hour, in microseconds
	NOW => 9_000_000_000_000_000_000,    # the model's stand-in for now()
};

my $node = PostgreSQL::Test::Cluster->new('diff');
$node->init(extra => [ '--locale=C', '--encoding=UTF8' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'fstore'
fstore.stream_workers = 1
fstore.stream_batch_size = ${\ BATCH}
max_worker_processes = 16
timezone = 'UTC'
log_min_messages = warning
# a crash fails the seed; the next seeds run on the restarted server
restart_after_crash = on
});
$node->start;

# ---- value domains ----

# Every value is written in PostgreSQL's output form, so the model can
# predict what the tables print.  Values that compare equal but print
# differently (0 and -0) are in the pools on purpose.
my %POOL = (
	'int' => [qw(0 1 -1 7 42 2147483647 -2147483648)],
	'real' => [ '0', '-0', '1.5', '-2.25', '0.1', 'NaN', 'Infinity', '-Infinity',
		'3.4028235e+38', '1e-45', '1e+20', '2.5e-05' ],
	'double precision' => [ '0', '-0', '0.1', '-2.25', 'NaN', '-Infinity', '3.141592653589793',
		'1.7976931348623157e+308', '5e-324', '1e+100' ],
	'text' => [ '', 'a', 'hello world', "it's", 'back\\slash', "tab\there", "new\nline",
		"\xc3\x9cn\xc3\xafc\xc3\xb6d\xc3\xa9 \xe2\x98\x83", '{"not":"json"}', 'NULL', '\\N', '"q"' ],
	'int[]' => [ '{}', '{1}', '{1,2,3}', '{NULL}', '{1,NULL,3}', '{-2147483648,2147483647}', '{0}' ],
	'real[]' => [ '{}', '{0}', '{-0}', '{NaN,1.5}', '{1.5,NaN}', '{0.1,-2.25,Infinity}',
		'{NULL,1.5}', '{-0,NaN}', '{0,NaN}' ],
	'json' => [ '{}', '[]', 'null', '{"a":1}', '{"a": 1}', '{"b":[1,2,{"c":"d"}]}', '"str"',
		'123', '{"a":1,"a":2}', ' {"a":1}' ],
);
# same value, other form
my %VARIANT = ('0' => '-0', '-0' => '0', '{0}' => '{-0}', '{-0}' => '{0}',
	'{-0,NaN}' => '{0,NaN}', '{0,NaN}' => '{-0,NaN}');

sub norm_float { my $s = shift; return $s eq '-0' ? '0' : $s; }
sub norm_float_array { my $s = shift; $s =~ s/(?<=[{,])-0(?=[,}])/0/g; return $s; }
my %NORM = ('real' => \&norm_float, 'double precision' => \&norm_float,
	'real[]' => \&norm_float_array);

# ---- entities and views ----

my %ENT = (
	ek => { cols => [ [ id => 'bigint' ] ],
		dom => [ map { [$_] } (1 .. 44), 0, -1, '9223372036854775807', '-9223372036854775808', 1000000, 77 ],
		missing => [ [555], ['123456789'] ] },
	et => { cols => [ [ name => 'text' ] ],
		dom => [ map { [$_] } (map { sprintf 'k%02d', $_ } 0 .. 43), '', ' ', "\xc3\x84", 'a,b', "it's", 'x' x 200 ],
		missing => [ ['nope'], ['K01'] ] },
	ec => { cols => [ [ a => 'bigint' ], [ b => 'text' ] ],
		dom => [ map { my $x = $_; map { [ $x, $_ ] } ('x', 'y', '', "\xc3\x84", 'zz', 'a b', "q's") }
			(1, 2, 3, -7, 0, '9223372036854775807', 42) ],
		missing => [ [ 5, 'x' ], [ 1, 'nope' ] ] },
);

my @VIEWS = (
	{ name => 'vb', ent => 'ek', tscol => 'event_ts', tsm => 'plain',
		feats => [ [ i => 'int' ], [ r => 'real' ], [ d => 'double precision' ], [ t => 'text' ],
			[ ia => 'int[]' ], [ ra => 'real[]' ] ] },
	{ name => 'vt', ent => 'et', tscol => 'ts', tsm => 'plain',
		feats => [ [ d => 'double precision' ], [ ra => 'real[]' ], [ j => 'json' ], [ t => 'text' ] ] },
	{ name => 'vc', ent => 'ec', tscol => 'event_ts', tsm => 'plain', ttl => '100 years',
		feats => [ [ i => 'int' ], [ t => 'text' ], [ ia => 'int[]' ], [ j => 'json' ] ] },
	{ name => 'vx', ent => 'ek', tscol => 'event_ts', tsm => 'expiry', ttl => '30 days',
		feats => [ [ i => 'int' ], [ j => 'json' ], [ r => 'real' ], [ t => 'text' ] ] },
	{ name => 'vy', ent => 'et', tscol => 'ts', tsm => 'expiry', ttl => '30 days',
		feats => [ [ ia => 'int[]' ], [ d => 'double precision' ] ] },
	{ name => 'vz', ent => 'ec', tscol => 'event_ts', tsm => 'plain',
		feats => [ [ r => 'real' ], [ t => 'text' ], [ ra => 'real[]' ] ] },
);

# Timestamps, in microseconds.  'plain' views: hours from 2020-01-01 (a
# 100-year ttl never expires them).  'expiry' views (ttl 30 days): hours
# from T0 - 60 days up to T0 - 1 day, T0 being the test's start, minus a
# gap around T0 - 30 days wide enough for the whole run, so a value is
# expired on every read (timestamp < Z) or on none.
my $T0 = $node->safe_psql('postgres', 'SELECT floor(extract(epoch from now()))::bigint');
my $RUNLEN = 2 * 86400 + 2 * $SOAK;                 # seconds the run may last
my $Z = ($T0 - 30 * 86400 - 3600) * 1_000_000;      # gap start
my $L = (3600 + $RUNLEN) * 1_000_000;               # gap length
my $PLAIN_BASE = 1577836800 * 1_000_000;
my $EXP_BASE = ($T0 - 60 * 86400) * 1_000_000;
my $EXP_MAXIDX = int((59 * 86400 - 7200 - $RUNLEN) / 3600);
die "soak too long for the expiry views' timestamps" if $EXP_MAXIDX < 300;

for my $v (@VIEWS)
{
	my $e = $ENT{ $v->{ent} };
	$v->{keys} = $e->{cols};
	$v->{nkeys} = scalar @{ $e->{cols} };
	$v->{dom} = $e->{dom};
	$v->{missing} = $e->{missing};
	$v->{maxidx} = $v->{tsm} eq 'expiry' ? $EXP_MAXIDX : 2000;
	$v->{expired} = $v->{tsm} eq 'expiry' ? sub { $_[0] < $Z } : $v->{ttl} ? sub { 0 } : undef;
	$v->{keytype} = $v->{nkeys} > 1 ? "fstore.$v->{ent}_key" : $e->{cols}[0][1];
	$v->{keycols} = [ map { $_->[0] } @{ $v->{keys} } ];
	$v->{fcols} = [ map { $_->[0] } @{ $v->{feats} } ];
	$v->{ftypes} = [ map { $_->[1] } @{ $v->{feats} } ];
}

sub ts_of
{
	my ($v, $idx, $sub) = @_;
	if ($v->{tsm} eq 'expiry')
	{
		my $t = $EXP_BASE + $idx * STEP + $sub;
		return $t < $Z ? $t : $t + $L;
	}
	return $PLAIN_BASE + $idx * STEP + $sub;
}

sub ts_lit
{
	my ($us) = @_;
	my $s = int($us / 1_000_000);
	my $f = $us - $s * 1_000_000;
	my @g = gmtime($s);
	return sprintf('%04d-%02d-%02d %02d:%02d:%02d.%06d+00',
		$g[5] + 1900, $g[4] + 1, $g[3], $g[2], $g[1], $g[0], $f);
}

# ---- SQL text ----

sub sqlq { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }
sub lit { my ($type, $val) = @_; return defined $val ? sqlq($val) . "::$type" : "NULL::$type"; }
sub tslit { my $ts = shift; return defined $ts ? sqlq(ts_lit($ts)) . '::timestamptz' : 'NULL::timestamptz'; }

sub copy_esc
{
	my $s = shift;
	return '\N' unless defined $s;
	$s =~ s/\\/\\\\/g;
	$s =~ s/\t/\\t/g;
	$s =~ s/\n/\\n/g;
	$s =~ s/\r/\\r/g;
	return $s;
}

# literals of a row: keys, features, event_ts (the online row's order)
sub row_lits
{
	my ($v, $r) = @_;
	return ((map { lit($v->{keys}[$_][1], $r->{k}[$_]) } 0 .. $v->{nkeys} - 1),
		(map { lit($v->{ftypes}[$_], $r->{f}[$_]) } 0 .. $#{ $v->{ftypes} }),
		tslit($r->{ts}));
}

sub copy_line
{
	my ($v, $r, @extra) = @_;
	return join("\t", (map { copy_esc($_) } @extra, @{ $r->{k} }, @{ $r->{f} }),
		defined $r->{ts} ? ts_lit($r->{ts}) : '\N') . "\n";
}

# the text of a row as FsModel::row_text makes it
sub text_sql
{
	my ($v, $al, $tscol) = @_;
	$tscol //= 'event_ts';
	my @p = map { "coalesce($al.${_}::text, chr(29))" } @{ $v->{keycols} };
	push @p, "coalesce(((extract(epoch from $al.$tscol) * 1000000)::bigint)::text, chr(29))";
	push @p, map { "coalesce($al.${_}::text, chr(29))" } @{ $v->{fcols} };
	return join(' || chr(31) || ', @p);
}

sub key_where
{
	my ($v, $k, $alias) = @_;
	$alias = $alias ? "$alias." : '';
	return join(' AND ', map { "$alias$v->{keycols}[$_] = " . lit($v->{keys}[$_][1], $k->[$_]) } 0 .. $v->{nkeys} - 1);
}

sub tag { my ($t, $expr) = @_; return "chr(2) || '$t' || chr(1) || $expr || chr(3)"; }

# ---- running SQL ----

my %FIG = (rounds => 0, calls => {}, rows => {});
my $S;    # the state of the seed being run

sub run
{
	my ($sql, $what) = @_;
	if ($LOG && $what ne 'check')
	{
		open my $fh, '>>', $S->{logfile} or die;
		print $fh "-- round $S->{round}: $what\n$sql\n";
		close $fh;
	}
	$S->{round_sql} .= "$sql\n" unless $what eq 'check';
	my $t0 = time;
	my ($ret, $out, $err) = $node->psql($S->{db}, "\\set VERBOSITY verbose\n$sql");
	$FIG{sql_secs}{$what =~ /^(\w+)/ ? $1 : $what} += time - $t0;
	my %r;
	while ($out =~ /\x02(\w+)\x01(.*?)\x03/sg) { $r{$1} = $2; }
	my ($code) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return { ret => $ret, out => $out, err => $err, code => $code, r => \%r };
}

sub ok_run
{
	my ($res, $what) = @_;
	return undef if $res->{ret} == 0;
	return "$what failed: $res->{err}";
}

# ---- the generator (every random choice is drawn from rand(), seeded per seed) ----

sub pick { return $_[ int(rand(scalar @_)) ]; }

sub shuffled
{
	my @a = @_;
	for (my $i = $#a; $i > 0; $i--)
	{
		my $j = int(rand($i + 1));
		@a[ $i, $j ] = @a[ $j, $i ];
	}
	return @a;
}

sub gen_value
{
	my ($type, $small) = @_;
	return undef if rand() < 0.1;
	my $big = $S->{big}{$type};
	$big = undef if $type eq 'json' && $ENV{FS_DIFF_NO_BIG_JSON};
	if ($big && rand() < ($small ? 0.01 : 0.12))
	{
		return pick(@$big);
	}
	return pick(@{ $POOL{$type} });
}

sub gen_tuple
{
	my ($v, $small) = @_;
	return [ map { gen_value($_, $small) } @{ $v->{ftypes} } ];
}

# a tuple equal to $t in another form, or $t
sub variant
{
	my ($v, $t) = @_;
	return [ map { my $x = $t->[$_];
			defined $x && $NORM{ $v->{ftypes}[$_] } && exists $VARIANT{$x} ? $VARIANT{$x} : $x } 0 .. $#$t ];
}

sub refresh_pool
{
	my ($vs, $v, $all) = @_;
	my $n = 3 + int(rand(4));
	if ($all || !$vs->{pool})
	{
		$vs->{pool} = [ map { gen_tuple($v) } 1 .. $n ];
	}
	else
	{
		$vs->{pool}[ int(rand(@{ $vs->{pool} })) ] = gen_tuple($v);
	}
	push @{ $vs->{pool} }, variant($v, $vs->{pool}[0]) if rand() < 0.5;
	$vs->{psmall} = [ grep { my $t = $_; !grep { defined && length > 1000 } @$t } @{ $vs->{pool} } ];
	$vs->{psmall} = [ gen_tuple($v, 1) ] unless @{ $vs->{psmall} };
}

sub move_window
{
	my ($vs, $v) = @_;
	my $r = rand();
	if ($r < 0.05) { $vs->{lo} -= int(rand(60)); }
	elsif ($r < 0.10) { $vs->{lo} += int(rand(60)); }
	else { $vs->{lo} += int(rand(4)) - 1; }
	$vs->{W} = 1 + int(rand(40)) if rand() < 0.1;
	$vs->{lo} = 0 if $vs->{lo} < 0;
	$vs->{lo} = $v->{maxidx} - $vs->{W} if $vs->{lo} > $v->{maxidx} - $vs->{W};
}

sub gen_ts
{
	my ($v, $vs, $subp) = @_;
	my $idx = $vs->{lo} + int(rand($vs->{W}));
	my $sub = rand() < $subp ? int(rand(STEP)) : 0;
	return ts_of($v, $idx, $sub);
}

sub batch_size
{
	my $r = rand();
	return 1 + int(rand(10)) if $r < 0.45;
	return 10 + int(rand(100)) if $r < 0.80;
	return 100 + int(rand(1400)) if $r < 0.96;
	return 1500 + int(rand(18501));
}

# n rows (key, features, ts) of a view; the caller makes model rows of them
sub gen_rows
{
	my ($v, $n) = @_;
	my $vs = $S->{vs}{ $v->{name} };
	my @dom = @{ $v->{dom} };
	my $nk = rand() < 0.3 ? 1 + int(rand(3)) : 1 + int(rand(scalar @dom));
	my @keys = (shuffled(@dom))[ 0 .. $nk - 1 ];
	if ($v->{ent} eq 'ek' && $n >= 256 && rand() < 0.1)
	{
		# now and then many keys (the apply walks the primary key for
		# 256 rows or more, or probes it when the keys are scattered)
		my $nw = 256 + int(rand($n < 3000 ? $n : 3000));
		my $base = 100000 + int(rand(20000));
		@keys = rand() < 0.5 ? map { [ $base + $_ ] } 0 .. $nw - 1
		  : map { [ 100000 + int(rand(40000)) ] } 1 .. $nw;
		push @keys, (shuffled(@dom))[ 0 .. 9 ];
	}
	my $small = $n > 1000;
	my $pool = $small ? $vs->{psmall} : $vs->{pool};
	my $subp = rand() < 0.2 ? 0.5 : 0.05;
	my @rows;
	while (@rows < $n)
	{
		my $k = pick(@keys);
		my $f = rand() < 0.85 ? pick(@$pool) : gen_tuple($v, $small);
		my $row = { k => [@$k], f => [@$f], ts => gen_ts($v, $vs, $subp) };
		# bursts of exact repeats
		my $rep = rand() < 0.05 ? 1 + int(rand(3)) : 1;
		push @rows, map { { k => [ @{ $row->{k} } ], f => [ @{ $row->{f} } ], ts => $row->{ts} } } 1 .. $rep;
	}
	splice @rows, $n;
	my $shape = rand();
	if ($shape < 0.15) { @rows = sort { $a->{ts} <=> $b->{ts} } @rows; }
	elsif ($shape < 0.25) { @rows = sort { $b->{ts} <=> $a->{ts} } @rows; }
	return \@rows;
}

# key order of the view's tables (C collation)
sub key_cmp
{
	my ($v, $a, $b) = @_;
	for my $i (0 .. $v->{nkeys} - 1)
	{
		my $c = $v->{keys}[$i][1] eq 'bigint' ? $a->[$i] <=> $b->[$i] : $a->[$i] cmp $b->[$i];
		return $c if $c;
	}
	return 0;
}

# A batch whose rows, in key order, put the fetch boundary (every FETCH
# rows) inside one key:
#   cross:   a key's rows straddle the first boundary
#   whole:   a key from before the first boundary to the end of the second
#            fetch (its rows fill a whole fetch and are carried twice)
#   big:     a key with 10,001 rows or more, anywhere
#   lastkey: the last fetch holds only rows of the last key, which also has
#            rows in the fetch before
#   exact:   10,000 or 10,001 rows
sub gen_boundary
{
	my ($v, $pattern) = @_;
	my $vs = $S->{vs}{ $v->{name} };
	my @keys = sort { key_cmp($v, $a, $b) } (shuffled(@{ $v->{dom} }))[ 0 .. 1 + int(rand(20)) ];
	my $m = scalar @keys;
	my @cnt = (0) x $m;
	my $spread = sub {    # $total rows over keys $from..$to
		my ($total, $from, $to) = @_;
		return if $to < $from;
		for (1 .. $total) { $cnt[ $from + int(rand($to - $from + 1)) ]++; }
	};
	if ($pattern eq 'cross')
	{
		my $j = int(rand($m));
		my $p = $j ? FETCH - 1 - int(rand(3000)) : 0;
		$spread->($p, 0, $j - 1);
		$cnt[$j] = FETCH - $p + 1 + int(rand(2000));
		$spread->(int(rand(3000)), $j + 1, $m - 1);
	}
	elsif ($pattern eq 'whole')
	{
		my $j = int(rand($m));
		my $p = $j ? 1 + int(rand(FETCH - 1)) : 0;
		$spread->($p, 0, $j - 1);
		$cnt[$j] = 2 * FETCH - $p;
		$#cnt = $j;
		$#keys = $j;
	}
	elsif ($pattern eq 'big')
	{
		my $j = int(rand($m));
		$cnt[$j] = FETCH + 1 + int(rand(5000));
		$spread->(int(rand(2 * FETCH - $cnt[$j])), 0, $m - 1);
	}
	elsif ($pattern eq 'lastkey')
	{
		my $tail = 1 + int(rand(3000));
		my $total = FETCH + $tail;
		$cnt[ $m - 1 ] = $tail + 1 + int(rand(500));
		$spread->($total - $cnt[ $m - 1 ], 0, $m - 2) if $m > 1;
		$cnt[0] += $total - $cnt[ $m - 1 ] if $m == 1;
	}
	else    # exact
	{
		$spread->(FETCH + int(rand(2)), 0, $m - 1);
	}
	my $pool = $vs->{psmall};
	my @rows;
	for my $i (0 .. $#keys)
	{
		for (1 .. $cnt[$i])
		{
			push @rows, { k => [ @{ $keys[$i] } ], f => [ @{ pick(@$pool) } ], ts => gen_ts($v, $vs, 0.7) };
		}
	}
	@rows = shuffled(@rows) if rand() < 0.5;
	return \@rows;
}

# model rows of generated rows, numbered in input order
sub model_rows
{
	my ($v, $rows, $m) = @_;
	$m //= $S->{model}{ $v->{name} };
	my $i = 0;
	return [ map { $m->row($_->{k}, $_->{f}, $_->{ts}, $i++) } @$rows ];
}

# makes one row invalid: a NULL key column or a NULL event_ts
sub break_row
{
	my ($v, $rows) = @_;
	my $r = $rows->[ int(rand(@$rows)) ];
	if (rand() < 0.6) { $r->{k}[ int(rand($v->{nkeys})) ] = undef; }
	else { $r->{ts} = undef; }
}

sub count_call
{
	my ($path, $n) = @_;
	$FIG{calls}{$path}++;
	$FIG{rows}{$path} += $n;
}

# ---- paths ----

sub expect_counts
{
	my ($what, $got, $c) = @_;
	my $want = "$c->{written} $c->{unchanged} $c->{late}";
	return undef if defined $got && $got eq $want;
	return "$what returned (written unchanged late) = (" . ($got // 'nothing') . "), the model says ($want)";
}

sub sql_write
{
	my ($v, $mrows, $tag, $null_elem) = @_;
	my @parts = map { 'ROW(' . join(', ', row_lits($v, $_)) . ')' } @$mrows;
	splice @parts, int(rand(@parts + 1)), 0, 'NULL' if $null_elem;
	return "SELECT " . tag($tag, "written || ' ' || unchanged || ' ' || late")
	  . " FROM fs_write('$v->{name}', ARRAY[\n" . join(",\n", @parts) . "\n]::fstore_online.$v->{name}\[]);\n";
}

sub sql_write_values
{
	my ($v, $mrows, $tag) = @_;
	my $cols = join(', ', @{ $v->{keycols} }, @{ $v->{fcols} }, 'event_ts');
	my $vals = join(",\n", map { '(' . join(', ', row_lits($v, $_)) . ')' } @$mrows);
	return "SELECT " . tag($tag, "written || ' ' || unchanged || ' ' || late")
	  . " FROM fs_write_query('$v->{name}', \$fsq\$SELECT * FROM (VALUES\n$vals\n) AS q($cols)\$fsq\$);\n";
}

sub p_write
{
	my ($v, $rows) = @_;
	my $n = $v->{name};
	my $mrows = model_rows($v, $rows);
	my $bad = grep { !$_->{valid} } @$mrows;
	my $null_elem = !$bad && rand() < 0.01;
	$bad ||= $null_elem;
	my $res = run(sql_write($v, $mrows, 'w', $null_elem), 'fs_write');
	count_call('fs_write', scalar @$rows);
	if ($bad)
	{
		return undef if ($res->{code} // '') eq '23502';
		return "fs_write with a NULL key, event_ts or element: expected error 23502, got "
		  . ($res->{ret} ? $res->{err} : "success ($res->{r}{w})");
	}
	return ok_run($res, 'fs_write') // expect_counts('fs_write', $res->{r}{w},
		$S->{model}{$n}->apply_call($mrows));
}

sub p_write_query
{
	my ($v, $rows, $form) = @_;
	my $n = $v->{name};
	my $mrows = model_rows($v, $rows);
	my $bad = grep { !$_->{valid} } @$mrows;
	$form //= @$rows <= 2000 && rand() < 0.3 ? 'values' : rand() < 0.3 ? 'text' : 'table';
	my $cols = join(', ', @{ $v->{keycols} }, @{ $v->{fcols} }, 'event_ts');
	my $sql;
	if ($form eq 'values')
	{
		$sql = sql_write_values($v, $mrows, 'w');
	}
	else
	{
		my $i = 0;
		my $data = join('', map { copy_line($v, $_, $i++) } @$mrows);
		my $sel = $form eq 'text' ? join(', ', map { "${_}::text" } split /, /, $cols) : $cols;
		$sql = "TRUNCATE stg_$n;\nCOPY stg_$n (ord, $cols) FROM STDIN;\n$data\\.\n"
		  . "SELECT " . tag('w', "written || ' ' || unchanged || ' ' || late")
		  . " FROM fs_write_query('$n', 'SELECT $sel FROM stg_$n ORDER BY ord');";
	}
	my $res = run($sql, "fs_write_query ($form)");
	count_call('fs_write_query', scalar @$rows);
	if ($bad)
	{
		return undef if ($res->{code} // '') eq '23502';
		return "fs_write_query with a NULL key or event_ts: expected error 23502, got "
		  . ($res->{ret} ? $res->{err} : "success ($res->{r}{w})");
	}
	return ok_run($res, 'fs_write_query') // expect_counts('fs_write_query', $res->{r}{w},
		$S->{model}{$n}->apply_call($mrows));
}

# Several calls in one transaction (each sees the ones before), a failing
# call rolled back to a savepoint, a read of the transaction's own writes,
# then COMMIT or ROLLBACK.
sub p_txn
{
	my ($v) = @_;
	my $n = $v->{name};
	my $c = $S->{model}{$n}->clone;
	my $sql = "\\set ON_ERROR_STOP 0\nBEGIN;\n";
	my (@want, $bad);
	my $nrows = 0;
	for my $i (1 .. 2 + int(rand(2)))
	{
		my $rows = gen_rows($v, 1 + int(rand(rand() < 0.2 ? 500 : 20)));
		$nrows += @$rows;
		if (rand() < 0.2)
		{
			my $brows = [ map { { k => [ @{ $_->{k} } ], f => $_->{f}, ts => $_->{ts} } } @$rows ];
			break_row($v, $brows);
			$sql .= "SAVEPOINT s$i;\n"
			  . (rand() < 0.5 ? sql_write($v, model_rows($v, $brows, $c), "b$i") : sql_write_values($v, model_rows($v, $brows, $c), "b$i"))
			  . "ROLLBACK TO SAVEPOINT s$i;\n";
			$bad++;
		}
		my $mrows = model_rows($v, $rows, $c);
		$sql .= rand() < 0.5 ? sql_write($v, $mrows, "c$i") : sql_write_values($v, $mrows, "c$i");
		my $k = $c->apply_call($mrows);
		push @want, [ "c$i", "$k->{written} $k->{unchanged} $k->{late}" ];
	}
	my $keys = gen_get_keys($v);
	my $g = text_sql($v, 'g');
	$sql .= "SELECT " . tag('tg', "coalesce(string_agg($g, chr(30) ORDER BY g.ordinality), '')")
	  . " FROM fs_get_many(NULL::fstore_online.$n, " . keys_sql($v, $keys) . ") WITH ORDINALITY g;\n";
	my $commit = rand() < 0.75;
	$sql .= $commit ? "COMMIT;\n" : "ROLLBACK;\n";
	$S->{what} .= $commit ? ' (commit)' : ' (rollback)';
	my $res = run($sql, 'transaction');
	count_call('transaction', $nrows);

	my @errs = $res->{err} =~ /ERROR:\s+([0-9A-Z]{5}):/g;
	return "transaction: expected " . ($bad // 0) . " errors 23502 (the calls under savepoints), got: $res->{err}"
	  unless @errs == ($bad // 0) && !grep { $_ ne '23502' } @errs;
	for my $w (@want)
	{
		return "fs_write/fs_write_query number $w->[0] in a transaction returned ("
		  . ($res->{r}{ $w->[0] } // 'nothing') . "), the model says ($w->[1])"
		  unless ($res->{r}{ $w->[0] } // '') eq $w->[1];
	}
	my $wg = join("\x1e", $c->get_many($keys, $v->{expired}));
	return "fs_get_many inside the transaction does not show its own writes as the model does:\n  fstore "
	  . ($res->{r}{tg} // '') . "\n  model  $wg"
	  unless ($res->{r}{tg} // '') eq $wg;
	if ($commit)
	{
		$S->{model}{$n} = $c;
	}
	else
	{
		# fstore.stats counts the calls of a rolled-back transaction too
		my $m = $S->{model}{$n};
		$m->{totals}{$_} = $c->{totals}{$_} for keys %{ $c->{totals} };
	}
	return undef;
}

# The stream: events inserted (and read back in the queue's physical order,
# which is the order the worker and fs_stream_apply take them in, before the
# commit), then applied in the session or by the worker.
sub p_stream
{
	my ($v, $rows, $mode) = @_;
	my $n = $v->{name};
	my $m = $S->{model}{$n};
	my $mrows = model_rows($v, $rows);
	my $cols = join(', ', @{ $v->{keycols} }, @{ $v->{fcols} }, 'event_ts');
	my $ins;
	if (@$mrows <= 300)
	{
		$ins = "INSERT INTO fstore_stream.$n ($cols) VALUES\n"
		  . join(",\n", map { '(' . join(', ', row_lits($v, $_)) . ')' } @$mrows) . ";\n";
	}
	else
	{
		$ins = "COPY fstore_stream.$n ($cols) FROM STDIN;\n" . join('', map { copy_line($v, $_) } @$mrows) . "\\.\n";
	}
	my $dump = "SELECT " . tag('q', "coalesce(string_agg(" . text_sql($v, 't') . ", chr(30) ORDER BY ctid), '')")
	  . " FROM fstore_stream.$n t;\n";
	my $max;
	my $sql = "BEGIN;\n$ins$dump";
	if ($mode eq 'sync')
	{
		$max = rand() < 0.25 ? int(rand(@$mrows + 1)) : undef;
		$sql .= "SELECT " . tag('a', "concat_ws(' ', events, applied, dead_letters, written, unchanged, late)")
		  . " FROM fs_stream_apply('$n'" . (defined $max ? ", $max" : '') . ");\n";
	}
	$sql .= "COMMIT;\nSELECT " . tag('wt', "fs_stream_wait('$n', '60 s')::text") . ";\n";
	my $res = run($sql, "stream ($mode)");
	count_call("stream_$mode", scalar @$rows);
	my $err = ok_run($res, "stream ($mode)");
	return $err if $err;
	return "fs_stream_wait did not see the queue drained within 60 s" unless ($res->{r}{wt} // '') eq 'true';

	# the events in queue order
	my %by;
	push @{ $by{ $_->{text} } }, $_ for @$mrows;
	my @order;
	for my $t (split /\x1e/, $res->{r}{q} // '', -1)
	{
		my $r = shift @{ $by{$t} // [] };
		return "the queue holds an event the test did not insert: " . substr($t, 0, 200) unless $r;
		push @order, $r;
	}
	return "the queue holds " . scalar(@order) . " events, " . scalar(@$mrows) . " were inserted"
	  unless @order == @$mrows;

	# batches: fs_stream_apply's (up to max_rows), then the worker's
	my @sync = (0) x 6;    # events applied dead written unchanged late
	my $taken = 0;
	my $apply = sub {
		my ($from, $cnt) = @_;
		my @b = @order[ $from .. $from + $cnt - 1 ];
		my $i = 0;
		my @valid = map { { %$_, ord => $i++ } } grep { $_->{valid} } @b;
		my $c = @valid ? $m->apply_call(\@valid) : { written => 0, unchanged => 0, late => 0 };
		$S->{dead}{$n} += @b - @valid;
		return ($cnt, scalar @valid, @b - @valid, $c->{written}, $c->{unchanged}, $c->{late});
	};
	if ($mode eq 'sync')
	{
		for (;;)
		{
			my $want = BATCH;
			$want = $max - $taken if defined $max && $max - $taken < $want;
			last if $want <= 0;
			my $got = @order - $taken < $want ? @order - $taken : $want;
			my @r = $apply->($taken, $got);
			$sync[$_] += $r[$_] for 0 .. 5;
			$taken += $got;
			last if $got < $want;
		}
		my $want = join(' ', @sync);
		return "fs_stream_apply returned (events applied dead_letters written unchanged late) = ("
		  . ($res->{r}{a} // 'nothing') . "), the model says ($want)"
		  unless ($res->{r}{a} // '') eq $want;
	}
	while ($taken < @order)
	{
		my $got = @order - $taken < BATCH ? @order - $taken : BATCH;
		$apply->($taken, $got);
		$taken += $got;
	}
	return undef;
}

# fs_materialize over the view's source table.  The source holds, for each
# key and timestamp, identical rows only (which of several rows with one key
# and timestamp wins is undefined for fs_materialize).
sub src_add
{
	my ($v, $rows) = @_;
	my $src = $S->{src}{ $v->{name} };
	my @add;
	for my $r (@$rows)
	{
		my $keyed = defined $r->{ts} && !grep { !defined } @{ $r->{k} };
		my $id = join("\x1f", @{ $r->{k} }) . "\x1e" . ($r->{ts} // '');
		if ($keyed && $src->{group}{$id}) { $r->{f} = [ @{ $src->{group}{$id} } ]; }
		elsif ($keyed) { $src->{group}{$id} = [ @{ $r->{f} } ]; }
		$r->{note} = rand() < 0.5 ? undef : 'n' . int(rand(100));
		push @add, $r;
	}
	push @{ $src->{rows} }, @add;
	my $cols = join(', ', @{ $v->{keycols} }, @{ $v->{fcols} }, $v->{tscol});
	return "COPY src_$v->{name} (note, $cols) FROM STDIN;\n"
	  . join('', map { copy_line($v, $_, $_->{note}) } @add) . "\\.\n";
}

sub p_materialize
{
	my ($v, $boundary) = @_;
	my $n = $v->{name};
	my $m = $S->{model}{$n};
	my $src = $S->{src}{$n};
	my $vs = $S->{vs}{$n};
	my $sql = '';
	my $tscol = $v->{tscol};

	# change the source
	if ($boundary || rand() < 0.1)
	{
		$sql .= "DELETE FROM src_$n;\n";
		$src->{rows} = [];
		$src->{group} = {};
	}
	elsif (rand() < 0.1 && @{ $src->{rows} })
	{
		my $cut = pick(@{ $src->{rows} })->{ts} // 0;
		$sql .= "DELETE FROM src_$n WHERE $tscol <= " . tslit($cut) . ";\n";
		$src->{rows} = [ grep { !defined $_->{ts} || $_->{ts} > $cut } @{ $src->{rows} } ];
		$src->{group} = {};
		for my $r (@{ $src->{rows} })
		{
			next unless defined $r->{ts} && !grep { !defined } @{ $r->{k} };
			$src->{group}{ join("\x1f", @{ $r->{k} }) . "\x1e" . $r->{ts} } = $r->{f};
		}
	}
	my $new = $boundary ? gen_boundary($v, $boundary) : gen_rows($v, rand() < 0.2 ? 0 : batch_size());
	if (!$boundary && @$new)
	{
		if (rand() < 0.04) { break_row($v, $new); }
		elsif (rand() < 0.05) { $new->[ int(rand(@$new)) ]{ts} = undef; }    # in no window
	}
	$sql .= src_add($v, $new) if @$new;
	if (!$boundary && rand() < 0.15 && @{ $src->{rows} })
	{
		# a corrected value for one key and timestamp
		my $r = pick(@{ $src->{rows} });
		if (defined $r->{ts} && !grep { !defined } @{ $r->{k} })
		{
			my $f = rand() < 0.8 ? pick(@{ $vs->{pool} }) : gen_tuple($v);
			my $id = join("\x1f", @{ $r->{k} }) . "\x1e" . $r->{ts};
			$src->{group}{$id} = [@$f];
			for my $s (@{ $src->{rows} })
			{
				$s->{f} = [@$f] if defined $s->{ts} && $s->{ts} == $r->{ts} && !key_cmp($v, $s->{k}, $r->{k})
				  && !grep { !defined } @{ $s->{k} };
			}
			$sql .= "UPDATE src_$n SET "
			  . join(', ', map { "$v->{fcols}[$_] = " . lit($v->{ftypes}[$_], $f->[$_]) } 0 .. $#$f)
			  . " WHERE " . key_where($v, $r->{k}) . " AND $tscol = " . tslit($r->{ts}) . ";\n";
		}
	}
	my $err;
	if ($sql ne '')
	{
		$err = ok_run(run($sql, 'source'), 'loading the source');
		return $err if $err;
	}

	# runs: one to three windows
	my @tss = sort { $a <=> $b } map { $_->{ts} // () } @{ $src->{rows} };
	my $pick_ts = sub {
		return gen_ts($v, $vs, 0) unless @tss && rand() < 0.8;
		my $t = pick(@tss);
		return rand() < 0.2 ? $t + pick(-1, 1) : $t;
	};
	for my $run (1 .. ($boundary ? 1 : 1 + int(rand(3))))
	{
		my ($since, $until, $args);
		my $r = rand();
		if ($boundary || $r < 0.12)
		{
			# everything the source holds (a boundary batch: exactly its rows)
			($since, $until) = (undef, @tss ? $tss[-1] : $pick_ts->());
			($since, $args) = ('-inf', "since => '-infinity', until => " . tslit($until))
			  if $boundary || $r < 0.06;
		}
		elsif ($r < 0.35) { $until = $pick_ts->(); }
		elsif ($r < 0.75)
		{
			($since, $until) = sort { $a <=> $b } ($pick_ts->(), $pick_ts->());
			$since = $until if rand() < 0.05;
		}
		elsif ($r < 0.85) { $until = 'now'; }
		elsif ($r < 0.95) { ($since, $until) = ('-inf', 'now'); }
		else { ($until, $since) = sort { $a <=> $b } ($pick_ts->(), $pick_ts->() + 1); }    # since > until
		$args //= join(', ',
			defined $since ? ('since => ' . ($since eq '-inf' ? "'-infinity'" : tslit($since))) : (),
			$until eq 'now' ? () : ('until => ' . tslit($until)));
		$args = ", $args" if $args ne '';
		my $res = run("SELECT " . tag('m', "concat_ws(' ', read, written, unchanged, late)")
			  . " FROM fs_materialize('$n'$args);", "fs_materialize('$n'$args)");
		count_call('fs_materialize', 0);

		# the model's window
		my $u = $until eq 'now' ? NOW : $until;
		if (defined $since && $since ne '-inf' && $since > $u)
		{
			next if ($res->{code} // '') eq '22023';
			return "fs_materialize with since > until: expected error 22023, got "
			  . ($res->{ret} ? $res->{err} : "success ($res->{r}{m})");
		}
		my $lo = !defined $since ? ($S->{wm}{$n} // -1) : $since eq '-inf' ? -1 : $since;
		my @win = $lo < $u ? grep { defined $_->{ts} && $_->{ts} > $lo && $_->{ts} <= $u } @{ $src->{rows} } : ();
		if (grep { grep { !defined } @{ $_->{k} } } @win)
		{
			if (($res->{code} // '') ne '23502')
			{
				return "fs_materialize over a source row with a NULL key: expected error 23502, got "
				  . ($res->{ret} ? $res->{err} : "success ($res->{r}{m})");
			}
			next;
		}
		$err = ok_run($res, 'fs_materialize');
		return $err if $err;
		$FIG{rows}{fs_materialize} += @win;
		my $c = $m->apply_call(model_rows($v, \@win));
		my $want = join(' ', scalar @win, $c->{written}, $c->{unchanged}, $c->{late});
		return "fs_materialize('$n'$args) returned (read written unchanged late) = ("
		  . ($res->{r}{m} // 'nothing') . "), the model says ($want)"
		  unless ($res->{r}{m} // '') eq $want;
		$S->{wm}{$n} = $u if !defined $S->{wm}{$n} || $u > $S->{wm}{$n};
	}
	# NULL-key rows stay out of later windows
	if (grep { grep { !defined } @{ $_->{k} } } @{ $src->{rows} })
	{
		my $cond = join(' OR ', map { "$_ IS NULL" } @{ $v->{keycols} });
		$src->{rows} = [ grep { !grep { !defined } @{ $_->{k} } } @{ $src->{rows} } ];
		return ok_run(run("DELETE FROM src_$n WHERE $cond;", 'source'), 'cleaning the source');
	}
	return undef;
}

# Plain DML on the online table: changes the online rows, never the history.
sub p_dml
{
	my ($v) = @_;
	my $n = $v->{name};
	my $m = $S->{model}{$n};
	my $vs = $S->{vs}{$n};
	my $sql = '';
	my $cols = join(', ', @{ $v->{keycols} }, @{ $v->{fcols} }, 'event_ts');
	for (1 .. 1 + int(rand(4)))
	{
		my $r = rand();
		my $k = [ @{ pick(@{ $v->{dom} }) } ];
		if ($r < 0.35)
		{
			my $row = $m->row($k, [ @{ rand() < 0.7 ? pick(@{ $vs->{pool} }) : gen_tuple($v) } ],
				gen_ts($v, $vs, 0.1), 0);
			$sql .= "INSERT INTO fstore_online.$n ($cols) VALUES (" . join(', ', row_lits($v, $row))
			  . ") ON CONFLICT (" . join(', ', @{ $v->{keycols} }) . ") DO UPDATE SET "
			  . join(', ', map { "$_ = excluded.$_" } @{ $v->{fcols} }, 'event_ts') . ";\n";
			$m->dml_upsert($row);
		}
		elsif ($r < 0.75)
		{
			my %set;
			my $t = pick(@{ $vs->{pool} });
			for my $j (0 .. $#{ $v->{fcols} }) { $set{$j} = $t->[$j] if rand() < 0.5; }
			my $ts = rand() < 0.5 ? gen_ts($v, $vs, 0.1) : undef;
			next unless %set || defined $ts;
			$sql .= "UPDATE fstore_online.$n SET "
			  . join(', ', (map { "$v->{fcols}[$_] = " . lit($v->{ftypes}[$_], $set{$_}) } sort keys %set),
				defined $ts ? ('event_ts = ' . tslit($ts)) : ())
			  . " WHERE " . key_where($v, $k) . ";\n";
			$m->dml_update(join("\x1f", @$k), \%set, $ts);
		}
		elsif ($r < 0.87)
		{
			# a row moved to another key, when that key has no row
			my $to = [ @{ pick(@{ $v->{dom} }) } ];
			$sql .= "UPDATE fstore_online.$n SET "
			  . join(', ', map { "$v->{keycols}[$_] = " . lit($v->{keys}[$_][1], $to->[$_]) } 0 .. $v->{nkeys} - 1)
			  . " WHERE " . key_where($v, $k) . " AND NOT EXISTS (SELECT 1 FROM fstore_online.$n o WHERE "
			  . key_where($v, $to, 'o') . ");\n";
			$m->dml_rekey(join("\x1f", @$k), $to);
		}
		elsif ($r < 0.97)
		{
			$sql .= "DELETE FROM fstore_online.$n WHERE " . key_where($v, $k) . ";\n";
			$m->dml_delete(join("\x1f", @$k));
		}
		else
		{
			$sql .= "TRUNCATE fstore_online.$n;\n";
			$m->dml_truncate;
		}
	}
	return undef if $sql eq '';
	count_call('dml', 1);
	return ok_run(run($sql, 'dml'), 'plain DML');
}

# ---- checks ----

sub keys_sql
{
	my ($v, $keys) = @_;
	my @e;
	for my $k (@$keys)
	{
		if (!defined $k) { push @e, 'NULL'; next; }
		if ($v->{nkeys} == 1) { push @e, lit($v->{keytype}, $k->[0]); next; }
		push @e, 'ROW(' . join(', ', map { lit($v->{keys}[$_][1], $k->[$_]) } 0 .. $v->{nkeys} - 1) . ")::$v->{keytype}";
	}
	return 'ARRAY[' . join(', ', @e) . "]::$v->{keytype}\[]";
}

sub gen_get_keys
{
	my ($v) = @_;
	my @keys;
	for (1 .. 1 + int(rand(40)))
	{
		my $r = rand();
		if ($r < 0.65) { push @keys, pick(@{ $v->{dom} }); }
		elsif ($r < 0.70) { push @keys, $v->{ent} eq 'ek' ? [ 100000 + int(rand(40000)) ] : pick(@{ $v->{dom} }); }
		elsif ($r < 0.80) { push @keys, pick(@{ $v->{missing} }); }
		elsif ($r < 0.88) { push @keys, undef; }
		elsif ($r < 0.92 && $v->{nkeys} > 1) { push @keys, [ pick(@{ $v->{dom} })->[0], undef ]; }
		elsif (@keys) { push @keys, $keys[ int(rand(@keys)) ]; }
	}
	push @keys, pick(@{ $v->{dom} }) unless @keys;
	return \@keys;
}

sub diff_lists
{
	my ($label, $got, $want) = @_;
	my %c;
	$c{$_}++ for @$want;
	$c{$_}-- for @$got;
	my @missing = grep { $c{$_} > 0 } sort keys %c;
	my @extra = grep { $c{$_} < 0 } sort keys %c;
	my $show = sub { my $s = shift; $s = substr($s, 0, 200); $s =~ s/\x1f/ | /g; $s =~ s/\x1d/NULL/g; $s =~ s/\n/\\n/g; $s };
	my $msg = "$label differs from the model (" . scalar(@missing) . " only in the model, "
	  . scalar(@extra) . " only in fstore; the first ones):";
	$msg .= "\n  only in the model: " . $show->($_) for grep { defined } @missing[ 0 .. 4 ];
	$msg .= "\n  only in fstore:    " . $show->($_) for grep { defined } @extra[ 0 .. 4 ];
	return $msg;
}

sub check_view
{
	my ($v) = @_;
	my $n = $v->{name};
	my $m = $S->{model}{$n};
	my $t = text_sql($v, 't');
	my $g = text_sql($v, 'g');
	my $keys = gen_get_keys($v);
	my $ksql = keys_sql($v, $keys);
	my $get = "SELECT %s FROM fs_get_many(NULL::fstore_online.$n, $ksql) WITH ORDINALITY g;\n";
	my $sql = "SELECT " . tag('on', "coalesce(string_agg($t, chr(30)), '')") . " FROM fstore_online.$n t;\n"
	  . "SELECT " . tag('hd', "count(*) || ' ' || coalesce(sum(('x' || substr(h, 1, 7))::bit(28)::int), 0) || ' ' || coalesce(sum(('x' || substr(h, 8, 7))::bit(28)::int), 0)")
	  . " FROM (SELECT md5($t) h FROM fstore_offline.$n t) s;\n"
	  . "SELECT " . tag('st', "concat_ws(' ', coalesce(rows_written, 0), coalesce(rows_unchanged, 0), coalesce(rows_late, 0), coalesce(dead_letters, 0))")
	  . " FROM fstore.stats WHERE view_name = '$n';\n"
	  . "SELECT " . tag('dl', "count(*)::text") . " FROM fstore.dead_letters WHERE view_name = '$n';\n"
	  . "SELECT " . tag('wm', "coalesce(((extract(epoch from watermark) * 1000000)::bigint)::text, 'none')")
	  . " FROM fstore.freshness WHERE view_name = '$n';\n"
	  . "SELECT " . tag('ow', 'n::text') . " FROM public.online_writes WHERE view_name = '$n';\n"
	  . "SET fstore.cache_enabled = off;\n"
	  . sprintf($get, tag('g0', "coalesce(string_agg($g, chr(30) ORDER BY g.ordinality), '')"))
	  . "SET fstore.cache_enabled = on;\n"
	  . sprintf($get, tag('g1', "coalesce(string_agg($g, chr(30) ORDER BY g.ordinality), '')"))
	  . sprintf($get, tag('g2', "coalesce(string_agg($g, chr(30) ORDER BY g.ordinality), '')"));
	my $res = run($sql, 'check');
	return "checking view $n failed: $res->{err}" if $res->{ret};
	my $r = $res->{r};

	my @on = sort split /\x1e/, $r->{on}, -1;
	@on = () if $r->{on} eq '';
	my @mon = $m->online_texts;
	return diff_lists("the online table of $n", \@on, \@mon) unless "@on" eq "@mon";

	if ($r->{hd} ne $m->history_digest)
	{
		my $d = run("SELECT " . tag('h', "coalesce(string_agg(md5($t) || chr(1) || substr($t, 1, 160), chr(30)), '')")
			  . " FROM fstore_offline.$n t;", 'check');
		# compared by md5, shown by their first 160 characters
		my (%text, @got, @want);
		for (split /\x1e/, $d->{r}{h} // '')
		{
			my ($h, $txt) = split /\x01/, $_, 2;
			$text{$h} = $txt;
			push @got, $h;
		}
		for (@{ $m->{hrows} }) { $text{ $_->[0] } //= $_->[1]; push @want, $_->[0]; }
		my $msg = diff_lists("the history of $n", \@got, \@want);
		$msg =~ s/([0-9a-f]{32})$/$text{$1}/mg;
		$msg =~ s/\x1f/ | /g;
		$msg =~ s/\x1d/NULL/g;
		return "history of $n: fstore has (count sums) $r->{hd}, the model " . $m->history_digest . "\n" . $msg;
	}

	my $want = join("\x1e", $m->get_many($keys, $v->{expired}));
	for my $gk ([ g0 => 'cache off' ], [ g1 => 'cache on' ], [ g2 => 'cache on, again' ])
	{
		next if ($r->{ $gk->[0] } // '') eq $want;
		my @got = split /\x1e/, $r->{ $gk->[0] } // '', -1;
		my @w = split /\x1e/, $want, -1;
		my $i = 0;
		$i++ while $i < @w && $i < @got && $got[$i] eq $w[$i];
		my $show = sub { my $s = shift // '(none)'; $s = substr($s, 0, 200); $s =~ s/\x1f/ | /g; $s =~ s/\x1d/NULL/g; $s };
		return "fs_get_many on $n ($gk->[1]), key $i of " . scalar(@w) . ": fstore " . $show->($got[$i])
		  . ", the model " . $show->($w[$i]);
	}

	my $tot = $m->{totals};
	my $st = "$tot->{written} $tot->{unchanged} $tot->{late} " . ($S->{dead}{$n} // 0);
	return "fstore.stats for $n (rows_written rows_unchanged rows_late dead_letters) = ($r->{st}), the model says ($st)"
	  unless $r->{st} eq $st;
	return "fstore.dead_letters holds $r->{dl} rows of $n, the model " . ($S->{dead}{$n} // 0)
	  unless $r->{dl} == ($S->{dead}{$n} // 0);
	return "the online table of $n had $r->{ow} rows inserted or updated, the model says $m->{owrites}"
	  . " (one per key and call that wrote or, with a ttl, confirmed a value, and one per DML row)"
	  unless $r->{ow} eq $m->{owrites};
	my $wm = $S->{wm}{$n};
	my $wm_ok = !defined $wm ? $r->{wm} eq 'none'
	  : $wm == NOW ? ($r->{wm} ne 'none' && $r->{wm} >= $T0 * 1_000_000)
	  : $r->{wm} eq $wm;
	return "the watermark of $n is $r->{wm}, the model says " . ($wm // 'none') unless $wm_ok;
	return undef;
}

# ---- one seed ----

sub setup_seed
{
	my ($seed) = @_;
	my $db = "diff_$seed";
	$S = { seed => $seed, db => $db, round => 0, vs => {}, model => {}, src => {}, wm => {}, dead => {},
		logfile => $node->basedir . "/diff_$seed.sql" };
	unlink $S->{logfile};
	srand($seed);
	# large values: over 2 kB, compressed in line; random, stored out of
	# line; very large and repetitive, compressed and out of line
	my $rnd = sub { join('', map { pick('a' .. 'z', 0 .. 9, 'A' .. 'Z') } 1 .. $_[0]) };
	$S->{big} = {
		json => [ '{"big":"' . ('ab' x (1100 + int(rand(900)))) . '"}', '{"r":"' . $rnd->(2100 + int(rand(2000))) . '"}',
			'[' . join(',', map { int(rand(1000)) } 1 .. 700) . ']',
			'{"huge":"' . ('abcdefghij' x (4000 + int(rand(2000)))) . '", "r":"' . $rnd->(3000) . '"}' ],
		text => [ 'x' x (2500 + int(rand(1000))), $rnd->(3000), $rnd->(5000) x 6 ],
	};
	$node->safe_psql('postgres', "DROP DATABASE IF EXISTS $db WITH (FORCE); CREATE DATABASE $db");
	# a row trigger counts the writes of online rows: unchanged rows must not
	# rewrite them, and a key is written at most once per call
	my $sql = "CREATE EXTENSION fstore;\n"
	  . "CREATE TABLE public.online_writes (view_name text PRIMARY KEY, n bigint NOT NULL);\n"
	  . "CREATE FUNCTION public.count_online_write() RETURNS trigger LANGUAGE plpgsql AS\n"
	  . "\$\$BEGIN UPDATE public.online_writes SET n = n + 1 WHERE view_name = TG_TABLE_NAME; RETURN NULL; END\$\$;\n"
	  . "SELECT fs_create_entity('ek', 'id bigint');\n"
	  . "SELECT fs_create_entity('et', 'name text');\n"
	  . "SELECT fs_create_entity('ec', 'a bigint, b text');\n";
	for my $v (@VIEWS)
	{
		my $n = $v->{name};
		my $keys = join(', ', map { "$_->[0] $_->[1]" } @{ $v->{keys} });
		my $feats = join(', ', map { "$_->[0] $_->[1]" } @{ $v->{feats} });
		$sql .= "CREATE TABLE src_$n (note text, $keys, $v->{tscol} timestamptz, $feats);\n"
		  . "CREATE INDEX ON src_$n ($v->{tscol});\n"
		  . "SELECT fs_create_feature_view('$n', '$v->{ent}', '$feats', source => 'src_$n'::regclass, "
		  . "timestamp_column => '$v->{tscol}'" . ($v->{ttl} ? ", ttl => interval '$v->{ttl}'" : '') . ");\n"
		  . "CREATE TABLE stg_$n (ord int, $keys, $feats, event_ts timestamptz);\n"
		  . "INSERT INTO public.online_writes VALUES ('$n', 0);\n"
		  . "CREATE TRIGGER count_online_write AFTER INSERT OR UPDATE ON fstore_online.$n\n"
		  . "  FOR EACH ROW EXECUTE FUNCTION public.count_online_write();\n";
		$S->{model}{$n} = FsModel->new(name => $n, nkeys => $v->{nkeys}, ttl => $v->{ttl},
			norm => [ map { $NORM{$_} } @{ $v->{ftypes} } ]);
		# expiry views start around the ttl's edge (index 719 is 30 days ago)
		my $vs = $S->{vs}{$n} = { lo => $v->{tsm} eq 'expiry' ? 690 + int(rand(40)) : int(rand(100)),
			W => 1 + int(rand(40)) };
		refresh_pool($vs, $v, 1);
		$S->{src}{$n} = { rows => [], group => {} };
	}
	$node->safe_psql($db, $sql);
}

# boundary rounds every seed runs: [ path, pattern ]
my @SPECIAL = (
	[ wq => 'cross' ], [ mat => 'whole' ], [ wq => 'lastkey' ], [ mat => 'cross' ], [ wq => 'whole' ],
	[ mat => 'lastkey' ], [ wq => 'big' ], [ wq => 'nullend' ], [ mat => 'exact' ], [ wq => 'exact' ],
);

sub one_round
{
	my ($round, $special) = @_;
	my $t_round = time;
	$S->{round} = $round;
	$S->{round_sql} = '';
	my $v = pick(@VIEWS);
	my $vs = $S->{vs}{ $v->{name} };
	move_window($vs, $v);
	refresh_pool($vs, $v) if rand() < 0.1;
	my $err;
	if ($special)
	{
		my ($path, $pattern) = @$special;
		$S->{what} = "$path $pattern on $v->{name}";
		if ($path eq 'mat') { $err = p_materialize($v, $pattern); }
		elsif ($pattern eq 'nullend')
		{
			# 10,001+ rows and a NULL key (sorted last): the error comes after a
			# whole fetch was applied, and nothing may remain of it
			my $rows = gen_boundary($v, 'cross');
			$rows->[ int(rand(@$rows)) ]{k}[0] = undef;
			$err = p_write_query($v, $rows, 'table');
		}
		else { $err = p_write_query($v, gen_boundary($v, $pattern)); }
	}
	else
	{
		my $r = rand();
		my $path = $r < 0.21 ? 'fs_write' : $r < 0.40 ? 'fs_write_query' : $r < 0.57 ? 'fs_materialize'
		  : $r < 0.68 ? 'stream_sync' : $r < 0.79 ? 'stream_bg' : $r < 0.86 ? 'dml'
		  : $r < 0.93 ? 'transaction' : 'replay';
		my $rows;
		if ($path eq 'replay')
		{
			# a recent batch again, through any path
			my $recent = $vs->{recent} // [];
			$rows = @$recent ? pick(@$recent) : gen_rows($v, batch_size());
			$rows = [ map { { k => [ @{ $_->{k} } ], f => [ @{ $_->{f} } ], ts => $_->{ts} } } @$rows ];
			$path = pick('fs_write', 'fs_write_query', 'stream_sync', 'stream_bg');
			$S->{what} = "replay, $path";
		}
		elsif ($path ne 'fs_materialize' && $path ne 'dml' && $path ne 'transaction')
		{
			$rows = gen_rows($v, batch_size());
			push @{ $vs->{recent} }, [ map { { k => [ @{ $_->{k} } ], f => [ @{ $_->{f} } ], ts => $_->{ts} } } @$rows ];
			shift @{ $vs->{recent} } if @{ $vs->{recent} } > 5;
			break_row($v, $rows) if rand() < ($path =~ /stream/ ? 0.1 : 0.04);
		}
		$S->{what} //= $path;
		$S->{what} .= " on $v->{name}" . ($rows ? ', ' . scalar(@$rows) . ' rows' : '');
		if ($path eq 'fs_write') { $err = p_write($v, $rows); }
		elsif ($path eq 'fs_write_query') { $err = p_write_query($v, $rows); }
		elsif ($path eq 'fs_materialize') { $err = p_materialize($v); }
		elsif ($path eq 'transaction') { $err = p_txn($v); }
		elsif ($path eq 'stream_sync') { $err = p_stream($v, $rows, 'sync'); }
		elsif ($path eq 'stream_bg') { $err = p_stream($v, $rows, 'bg'); }
		else { $err = p_dml($v); }
	}
	# the tables tell more about a disagreement than the counts alone
	if (!$err || $err =~ /returned/)
	{
		my $cerr = check_view($v);
		$err = $err ? "$err\n$cerr" : $cerr if $cerr;
	}
	if (!$err && $round % 20 == 0)
	{
		for my $w (@VIEWS)
		{
			$err = check_view($w);
			last if $err;
		}
	}
	$FIG{rounds}++;
	$FIG{round_secs}{ $S->{what} =~ /^(\w+)/ ? $1 : '?' } += time - $t_round;
	return $err;
}

sub run_seed
{
	my ($seed, $deadline) = @_;
	my $t0 = time;
	setup_seed($seed);
	my ($done, $failed) = (0, 0);
	for my $round (1 .. $ROUNDS)
	{
		last if $deadline && time > $deadline;
		undef $S->{what};
		# rounds 7, 17, 27, ...: the boundary batches, in turn
		# (seed 1 starts with the first, seed 2 with the eighth, ...)
		my $special = $round % 10 == 7 ? $SPECIAL[ (7 * ($seed - 1) + int($round / 10)) % @SPECIAL ] : undef;
		my $err = one_round($round, $special);
		$done = $round;
		if ($err)
		{
			my $file = $node->basedir . "/diff_${seed}_round_$round.sql";
			open my $fh, '>', $file or die;
			print $fh $S->{round_sql};
			close $fh;
			fail("seed $seed round $round ($S->{what})");
			diag("seed $seed round $round ($S->{what}): $err\n"
				  . "the round's SQL is in $file; rerun with FS_DIFF_SEED=$seed (FS_DIFF_LOG=1 logs every statement)");
			$failed = 1;
			$FIG{failed}++;
			last;
		}
	}
	# after a crash the server restarts: wait for it
	$node->poll_query_until('postgres', 'SELECT true') if $failed;
	$node->psql('postgres', "DROP DATABASE $S->{db} WITH (FORCE)") unless $ENV{FS_DIFF_KEEP};
	pass(sprintf('seed %d: %d rounds in %.1f s', $seed, $done, time - $t0)) unless $failed;
	return $done;
}

# ---- main ----

my $t_start = time;
if ($SOAK)
{
	my $deadline = $t_start + $SOAK;
	my $seed = $ENV{FS_DIFF_SEED} // (int(time) % 1000000) * 100;
	while (time < $deadline)
	{
		run_seed($seed, $deadline);
		$seed++;
	}
}
else
{
	my @seeds = defined $ENV{FS_DIFF_SEED} ? split(/[ ,]+/, $ENV{FS_DIFF_SEED}) : @CI_SEEDS;
	run_seed($_) for @seeds;
}

my $rows = 0;
$rows += $_ for values %{ $FIG{rows} };
my $fig = sprintf("%d rounds (%d failed seeds), %d rows applied in %.0f s; calls per path: %s",
	$FIG{rounds}, $FIG{failed} // 0, $rows, time - $t_start,
	join(', ', map { "$_ $FIG{calls}{$_} (" . ($FIG{rows}{$_} // 0) . " rows)" } sort keys %{ $FIG{calls} }));
$fig .= "\nseconds in SQL: " . join(', ', map { sprintf('%s %.1f', $_, $FIG{sql_secs}{$_}) } sort keys %{ $FIG{sql_secs} })
  . "\nseconds per kind of round: " . join(', ', map { sprintf('%s %.1f', $_, $FIG{round_secs}{$_}) } sort keys %{ $FIG{round_secs} });
if ($SOAK) { diag($fig); } else { note($fig); }

$node->stop;
done_testing();
