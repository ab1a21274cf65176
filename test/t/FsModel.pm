# FsModel: a reference model of one feature view's stores, for the
# differential test test/t/010_differential.pl.
#
# It applies the write rules of CONTRACT.md ("Writes") and docs/concepts.md
# ("Change detection") to an in-memory copy of the view's online table (one
# row per key: feature values and event_ts) and history table (every row
# appended, in insertion order), and predicts what each call returns.
#
# The rules, for the rows of one call (fs_write, fs_write_query, one stream
# batch, one fs_materialize run):
#
#   - Rows are grouped by key; within a key they are taken in event_ts
#     order, then input order (for fs_write the array order, for
#     fs_write_query the query's order, for a stream batch the queue's
#     physical order; for fs_materialize the order is undefined, so the
#     test only gives it ties between identical rows).
#   - Superseded: if the next row of the key in this call has the same
#     event_ts, the row is skipped and counted unchanged: among rows of one
#     key with the same event_ts only the last counts.
#   - Late: the key has an online row (at the start of the call, or
#     written earlier in the call) and the row's event_ts is older than the
#     online event_ts.  The row is compared with the value in effect at its
#     time: the key's latest history row with event_ts <= the row's (among
#     history rows with the same event_ts, the one written last), or the
#     previous late row of this call if that one is newer.  Equal:
#     unchanged, nothing stored.  Different, or nothing in effect: late,
#     appended to the history only.  (The model appends late rows to its
#     history at once; the latest history row at or before t is then the
#     previous late row of the call whenever that one is newer, and when the
#     previous late row was unchanged it equals what was in effect at its
#     time, so the two formulations agree.)
#   - Unchanged: otherwise, if the key has a current value and the features
#     are equal to it.  Nothing is appended and the online values keep their
#     stored form (a -0 stays -0 when 0 confirms it).  In a view with a ttl,
#     and only there, the online event_ts moves forward to the row's
#     event_ts if that is newer; without a ttl it stays at the last change.
#   - Written: otherwise: the row becomes the current value (online values
#     and event_ts are the row's, in the row's form) and one history row is
#     appended.
#   - A row whose event_ts equals the online event_ts is not late.
#   - Equality is IS NOT DISTINCT FROM per feature: NULLs equal, a NULL and
#     a value differ, floats by the type's = (0 = -0, NaN = NaN, also inside
#     arrays), json (no = operator) by its text, everything else by value.
#     The caller gives, per feature, a function mapping a value's text form
#     to a string that is equal exactly when the values are.
#
# Ties and re-runs in ttl views, as these rules make them:
#
#   - A tie with the online row (same key and event_ts, in a later call) is
#     not late: equal is unchanged, different is written and replaces the
#     online value (the later call wins).  The history then holds two rows
#     with that event_ts, and the later one is the value in effect at that
#     time for later late rows.  Ties inside one call: only the last row
#     counts, the others are unchanged even when their values differ.
#   - A confirmation (a row equal to the online value, newer than the online
#     event_ts) moves the online event_ts forward in a ttl view and leaves no
#     history row.  So a row older than the confirmation but newer than the
#     last change, arriving in a later call, is late in a ttl view (history
#     only, online keeps the confirmed value) where without a ttl it would be
#     written and become the online value (concepts.md, "Caveat:
#     confirmations are not recorded").
#   - Re-running a call at once (fs_write of the same rows, a
#     materialization window again): every row is unchanged and nothing
#     moves, with or without a ttl, as long as the key's online value came
#     from fstore's writes (plain DML leaves no history, so a confirmation
#     of a value set by DML is late on a re-run).  Rows that were written or late are in
#     the history at their event_ts; a confirmation equals the value in
#     effect at its time; the newest row equals the online value and, in a
#     ttl view, already set the online event_ts.  Re-running after other
#     calls changed the key is judged afresh: in the caveat's example
#     (A at t1, A at t10, then B at t5), re-running the first call is all
#     unchanged in a ttl view (A at t10 is the online row), while without a
#     ttl A at t10 differs from the online B at t5 and is written, adding a
#     history row the first run did not add.

# Plain DML on the online table changes the online state only (never the
# history); a key deleted from the online table has no current value, so
# its next row is written whatever the history holds.
package FsModel;

use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $NUL = "\x1d";    # a NULL column in the text form of a row
my $SEP = "\x1f";    # between columns

# new(name => ..., nkeys => n, norm => [per-feature sub or undef], ttl => bool)
sub new
{
	my ($class, %a) = @_;
	my $self = bless {
		name => $a{name},
		nkeys => $a{nkeys},
		norm => $a{norm},
		ttl => $a{ttl} ? 1 : 0,
		online => {},    # keystr -> { k, f, eq, ts }
		hist => {},      # keystr -> { ts => [ sorted distinct ts ], eq => { ts => eq of the last row } }
		hrows => [],     # [ md5, short text ] per history row, in insertion order
		hcount => 0,
		hsum1 => 0,
		hsum2 => 0,
		totals => { written => 0, unchanged => 0, late => 0 },
		owrites => 0,    # rows inserted or updated in the online table
	}, $class;
	return $self;
}

# ---- rows ----

# A row: k => [key texts], f => [feature texts or undef], ts => event_ts in
# microseconds since the epoch (or undef), ord => input position.
sub row
{
	my ($self, $k, $f, $ts, $ord) = @_;
	my $r = { k => $k, f => $f, ts => $ts, ord => $ord };
	$self->finish_row($r);
	return $r;
}

sub finish_row
{
	my ($self, $r) = @_;
	$r->{valid} = (defined $r->{ts} && !grep { !defined } @{ $r->{k} }) ? 1 : 0;
	$r->{keystr} = join($SEP, map { $_ // $NUL } @{ $r->{k} });
	$r->{eq} = $self->eq_of($r->{f});
	$r->{text} = $self->row_text($r->{k}, $r->{ts}, $r->{f});
	return $r;
}

sub eq_of
{
	my ($self, $f) = @_;
	my @e;
	for my $j (0 .. $#$f)
	{
		my $v = $f->[$j];
		if (!defined $v) { push @e, 'N'; next; }
		my $n = $self->{norm}[$j];
		push @e, 'V' . ($n ? $n->($v) : $v);
	}
	return join($SEP, @e);
}

# The text form of a row, as the test's SQL builds it: key columns, event_ts
# (microseconds), features; NULL as \x1d, columns separated by \x1f.
sub row_text
{
	my ($self, $k, $ts, $f) = @_;
	return join($SEP, (map { $_ // $NUL } @$k), $ts // $NUL, map { $_ // $NUL } @$f);
}

# md5 of a row's text as two 28-bit numbers (what the SQL digest sums)
sub md5_parts
{
	my ($text) = @_;
	my $h = md5_hex($text);
	return ($h, hex(substr($h, 0, 7)), hex(substr($h, 7, 7)));
}

# ---- history ----

sub append_history
{
	my ($self, $r) = @_;
	my $h = $self->{hist}{ $r->{keystr} } //= { ts => [], eq => {} };
	my $ts = $r->{ts};
	if (!exists $h->{eq}{$ts})
	{
		# insert into the sorted list of distinct event_ts
		my $list = $h->{ts};
		my ($lo, $hi) = (0, scalar @$list);
		while ($lo < $hi)
		{
			my $mid = int(($lo + $hi) / 2);
			if ($list->[$mid] < $ts) { $lo = $mid + 1 } else { $hi = $mid }
		}
		splice @$list, $lo, 0, $ts;
	}
	$h->{eq}{$ts} = $r->{eq};    # the row written last wins a tie
	my ($md5, $p1, $p2) = md5_parts($r->{text});
	push @{ $self->{hrows} }, [ $md5, substr($r->{text}, 0, 160) ];
	$self->{hcount}++;
	$self->{hsum1} += $p1;
	$self->{hsum2} += $p2;
}

# eq string of the key's value in effect at ts (latest history row at or
# before ts), or undef when there is none
sub in_effect
{
	my ($self, $keystr, $ts) = @_;
	my $h = $self->{hist}{$keystr} or return undef;
	my $list = $h->{ts};
	my ($lo, $hi) = (0, scalar @$list);
	while ($lo < $hi)    # first index with list > ts
	{
		my $mid = int(($lo + $hi) / 2);
		if ($list->[$mid] <= $ts) { $lo = $mid + 1 } else { $hi = $mid }
	}
	return undef if $lo == 0;
	return $h->{eq}{ $list->[ $lo - 1 ] };
}

# ---- one call ----

# Applies the valid rows of one call (the caller has checked for NULL keys
# and event_ts); returns { written, unchanged, late }.
sub apply_call
{
	my ($self, $rows) = @_;
	my %c = (written => 0, unchanged => 0, late => 0);
	my %by;
	for my $r (@$rows)
	{
		die "apply_call: invalid row" unless $r->{valid};
		push @{ $by{ $r->{keystr} } }, $r;
	}
	for my $key (sort keys %by)
	{
		my @rs = sort { $a->{ts} <=> $b->{ts} || $a->{ord} <=> $b->{ord} } @{ $by{$key} };
		my $on = $self->{online}{$key};
		my $exists = defined $on;
		my $cur_ts = $exists ? $on->{ts} : undef;
		my $cur_eq = $exists ? $on->{eq} : undef;
		my $cur_row;    # row of this call that became the current value
		my $dirty = 0;
		for my $i (0 .. $#rs)
		{
			my $r = $rs[$i];
			if ($i < $#rs && $rs[ $i + 1 ]{ts} == $r->{ts})
			{
				$c{unchanged}++;    # superseded
				next;
			}
			if ($exists && $r->{ts} < $cur_ts)
			{
				my $eff = $self->in_effect($key, $r->{ts});
				if (defined $eff && $eff eq $r->{eq})
				{
					$c{unchanged}++;
				}
				else
				{
					$c{late}++;
					$self->append_history($r);
				}
				next;
			}
			if ($exists && $cur_eq eq $r->{eq})
			{
				$c{unchanged}++;
				if ($self->{ttl} && $r->{ts} > $cur_ts)
				{
					$cur_ts = $r->{ts};
					$dirty = 1;
				}
				next;
			}
			$c{written}++;
			$self->append_history($r);
			$cur_row = $r;
			$cur_ts = $r->{ts};
			$cur_eq = $r->{eq};
			$exists = 1;
			$dirty = 1;
		}
		next unless $dirty;
		$self->{owrites}++;    # once per key and call
		if ($cur_row)
		{
			$self->{online}{$key} =
			  { k => $cur_row->{k}, f => $cur_row->{f}, eq => $cur_row->{eq}, ts => $cur_ts };
		}
		else
		{
			$self->{online}{$key} = { %$on, ts => $cur_ts };
		}
	}
	$self->{totals}{$_} += $c{$_} for keys %c;
	return \%c;
}

# A copy that can be changed without changing this one (for a transaction
# that may roll back).  Rows and online entries are never changed in place,
# so sharing them is safe; the per-key history indexes are copied.
sub clone
{
	my ($self) = @_;
	my %h;
	for my $k (keys %{ $self->{hist} })
	{
		my $e = $self->{hist}{$k};
		$h{$k} = { ts => [ @{ $e->{ts} } ], eq => { %{ $e->{eq} } } };
	}
	return bless { %$self, online => { %{ $self->{online} } }, hist => \%h,
		hrows => [ @{ $self->{hrows} } ], totals => { %{ $self->{totals} } } }, ref $self;
}

# ---- plain DML on the online table ----

# INSERT ... ON CONFLICT DO UPDATE of a whole row
sub dml_upsert
{
	my ($self, $r) = @_;
	$self->{online}{ $r->{keystr} } = { k => $r->{k}, f => $r->{f}, eq => $r->{eq}, ts => $r->{ts} };
	$self->{owrites}++;
}

# UPDATE of some features ({ index => text or undef }) and maybe event_ts
sub dml_update
{
	my ($self, $keystr, $set, $ts) = @_;
	my $on = $self->{online}{$keystr} or return 0;
	my @f = @{ $on->{f} };
	$f[$_] = $set->{$_} for keys %$set;
	$self->{online}{$keystr} =
	  { k => $on->{k}, f => \@f, eq => $self->eq_of(\@f), ts => $ts // $on->{ts} };
	$self->{owrites}++;
	return 1;
}

# UPDATE of the key columns, done only when the new key has no row (so
# never when it is the same key)
sub dml_rekey
{
	my ($self, $old, $newk) = @_;
	my $on = $self->{online}{$old} or return 0;
	my $new = join($SEP, @$newk);
	return 0 if exists $self->{online}{$new};    # the same key too
	delete $self->{online}{$old};
	$self->{online}{$new} = { %$on, k => [@$newk] };
	$self->{owrites}++;
	return 1;
}

sub dml_delete
{
	my ($self, $keystr) = @_;
	return defined delete $self->{online}{$keystr};
}

sub dml_truncate
{
	my ($self) = @_;
	$self->{online} = {};
}

# ---- what the tables and reads should hold ----

# sorted texts of the online rows
sub online_texts
{
	my ($self) = @_;
	return sort map { $self->row_text($_->{k}, $_->{ts}, $_->{f}) } values %{ $self->{online} };
}

sub history_digest
{
	my ($self) = @_;
	return "$self->{hcount} $self->{hsum1} $self->{hsum2}";
}

# fs_get_many's rows for a list of keys (each an array ref of key texts, or
# undef for a NULL key); $expired->(ts) says whether a value is past the ttl
sub get_many
{
	my ($self, $keys, $expired) = @_;
	my $nf = scalar @{ $self->{norm} };
	my @out;
	for my $k (@$keys)
	{
		if (!defined $k)
		{
			push @out, $self->row_text([ (undef) x $self->{nkeys} ], undef, [ (undef) x $nf ]);
			next;
		}
		my $keystr = join($SEP, map { $_ // $NUL } @$k);
		my $on = $self->{online}{$keystr};
		if ($on && !($expired && $expired->($on->{ts})))
		{
			push @out, $self->row_text($k, $on->{ts}, $on->{f});
		}
		else
		{
			push @out, $self->row_text($k, undef, [ (undef) x $nf ]);
		}
	}
	return @out;
}

1;
