/*
 * training.c
 *		Point-in-time joins for training sets: fstore.as_of_join, the "hash"
 *		strategy of fs_training_set_query (the SQL around it, and the
 *		"lateral" strategy, are generated in fstore--*.sql).
 *
 * For every row of an entity query (keys + event_ts + anything else) and
 * every requested feature, the value of the latest offline history row of
 * the feature's view with the same key and event_ts at or before the row's
 * (ties: the later created_at, then the later row), unless that row is
 * older than the view's ttl.  Rows come out in the entity query's order,
 * with its columns first.
 *
 * The entity rows are read through a cursor in chunks sized by
 * fstore.training_work_mem.  For each chunk and each view:
 *
 *	1. the chunk's rows are sorted by key and event_ts, and each distinct
 *	   key goes into a hash table (lib/simplehash.h, storing the hash; one
 *	   instantiation for a single integer key, one comparing through the
 *	   key type's equality) with its range of rows;
 *	2. one sequential scan of the view's history looks each history row's
 *	   key up and records it (TID, event_ts, created_at; no copying) at the
 *	   first of the key's rows it may serve, if it beats what is there; a
 *	   running maximum over each key's rows in time order then gives every
 *	   row its best candidate;
 *	3. the winners are fetched in TID order (each history row once,
 *	   however many entity rows it serves) and their feature values kept;
 *
 * then the chunk's rows are emitted in order.  Work is one pass over each
 * history per chunk (a hash probe and a search among the key's rows per
 * history row) plus the winners: no sort of the history and no candidate
 * pairs, however many history and entity rows a key has.  Memory is
 * the chunk's keys, winners and values; the entity rows themselves wait in
 * a tuplestore (which spills past work_mem), as does the result.
 *
 * Everything reads with the calling statement's snapshot.  The history
 * tables are read directly, through the table access method (a sequential
 * scan for the pass, fetches by TID for the winners: see fetch_winners),
 * so the caller's SELECT privilege on each is checked first (and row-level
 * security is refused, as by fs_get_many).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "access/detoast.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "catalog/acl.h"
#include "catalog/metadata.h"
#include "catalog/query.h"
#include "keys/keys.h"
#include "stats/progress.h"
#include "training/training.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(fs_as_of_join);

/* a winner to fetch: its TID as one integer, and its sorted position */
typedef struct AsofTidPos
{
	uint64		tid;
	int32		pos;
} AsofTidPos;

#define ST_SORT sort_tidpos
#define ST_ELEMENT_TYPE AsofTidPos
#define ST_COMPARE(a, b) ((a)->tid < (b)->tid ? -1 : (a)->tid > (b)->tid ? 1 : 0)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* an entity row to sort on the fast path (one integer key) */
typedef struct AsofRowKey
{
	uint32		hash;
	int32		row;
	int64		key;
	int64		ts;
} AsofRowKey;

static inline int
rowkey_cmp(const AsofRowKey *a, const AsofRowKey *b)
{
	if (a->hash != b->hash)
		return a->hash < b->hash ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	return (a->row > b->row) - (a->row < b->row);
}

#define ST_SORT sort_rowkeys
#define ST_ELEMENT_TYPE AsofRowKey
#define ST_COMPARE(a, b) rowkey_cmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/* fstore.training_work_mem, in kB */
int			fs_training_work_mem = 262144;

/* rows fetched from the entity cursor at a time */
#define ASOF_FETCH	10000

/*
 * One entity row's best history candidate so far in one view's pass.  A
 * chunk's rows of one key sit next to each other in time order (see
 * AsofKeys), so a history row's work touches a cache line or two.
 */
typedef struct AsofCand
{
	int64		ts;				/* the candidate's event_ts */
	int64		created;		/* and created_at */
	ItemPointerData tid;		/* invalid: no candidate */
} AsofCand;

/* a key's rows in the chunk: sorted positions first .. first + count - 1 */
typedef struct AsofRun
{
	int64		maxts;			/* latest event_ts of the key's rows */
	int32		first;
	int32		count;
} AsofRun;

/*
 * The key tables (lib/simplehash.h), one entry per distinct key of the
 * chunk, with its hash stored: on the fast path the key itself, otherwise
 * the key values of the key's first row (in AsofKeys.vals).  32 bytes
 * either way, two to a cache line.
 */
typedef struct AsofSlot8
{
	int64		key;
	AsofRun		run;
	uint32		hash;
	char		status;			/* simplehash's */
} AsofSlot8;

typedef struct AsofSlotK
{
	const Datum *key;
	AsofRun		run;
	uint32		hash;
	char		status;			/* simplehash's */
} AsofSlotK;

/*
 * The chunk's keys of one entity (views of one entity share them).  Rows
 * with a key and an event_ts are sorted by (key hash, key, event_ts); the
 * rows of a key are then a range of sorted positions, found through the
 * key table (keys8 on the fast path, keysk otherwise).
 */
typedef struct AsofKeys
{
	const char *entity;
	int			nkeys;
	AttrNumber	attno[FS_MAX_KEYS]; /* in the entity query's result */
	FsView	   *fv;				/* a view of that entity: key functions */
	FmgrInfo	eq[FS_MAX_KEYS];
	bool		int8_key;		/* fast path: one by-value 8-byte key */
	bool		byref;			/* some key column is passed by reference */
	/* per chunk */
	Datum	   *vals;			/* nrows x nkeys */
	bool	   *isnull;			/* nrows: a key column is NULL */
	int			nsorted;		/* rows with a key and an event_ts */
	int32	   *sorted_row;		/* nsorted: row of each sorted position */
	int64	   *sorted_ts;		/* nsorted: its event_ts */
	uint32	   *row_hash;		/* nrows, while sorting */
	int			nruns;			/* distinct keys */
	int32	   *runs;			/* nruns + 1: key k's positions are
								 * runs[k] .. runs[k + 1] - 1 */
	struct asof8_hash *keys8;
	struct asofk_hash *keysk;
} AsofKeys;

typedef struct AsofView
{
	FsView	   *fv;
	Relation	rel;			/* offline table */
	AsofKeys   *keys;
	int			nfeat;			/* features fetched from this view */
	int		   *cols;			/* their logical columns */
	/*
	 * The fetched values of a row: by-value features in their own width at
	 * off[f], others as a Datum; then one byte per feature, 1 when present.
	 */
	int		   *off;
	int			present_off;
	int			stride;
	/* per chunk */
	AsofCand   *cand;			/* keys->nsorted, in sorted order */
	char	   *data;			/* nrows x stride */
} AsofView;

/* one output feature */
typedef struct AsofOut
{
	int			view;
	int			slot;			/* index among the view's fetched features */
} AsofOut;

typedef struct AsofState
{
	int			nviews;
	AsofView   *views;
	int			nkeysets;
	AsofKeys   *keysets;
	int			nout;
	AsofOut    *out;
	TupleDesc	etupdesc;		/* the entity query's result */
	AttrNumber	ts_attno;
	Oid			ts_type;
	bool		has_cutoff;
	TimestampTz cutoff;
	Snapshot	snapshot;
	/* the current chunk */
	MemoryContext chunkcxt;
	int			nrows;
	int			maxrows;
	int64	   *ets;			/* nrows: entity event_ts */
	bool	   *etsnull;
	Tuplestorestate *rows;		/* the chunk's entity rows */
} AsofState;

/* 64-bit finalizer (splitmix64's) for the one-integer-key fast path */
static inline uint32
mix64(uint64 x)
{
	x ^= x >> 30;
	x *= UINT64CONST(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64CONST(0x94d049bb133111eb);
	x ^= x >> 31;
	return (uint32) x;
}

static uint32
asof_hash(AsofKeys *ks, const Datum *vals)
{
	if (ks->int8_key)
		return mix64((uint64) DatumGetInt64(vals[0]));
	return (uint32) fs_key_hash(ks->fv, vals);
}

static bool
asof_keys_equal(AsofKeys *ks, const Datum *a, const Datum *b)
{
	int			k;

	if (ks->int8_key)
		return a[0] == b[0];
	for (k = 0; k < ks->nkeys; k++)
		if (!DatumGetBool(FunctionCall2Coll(&ks->eq[k], ks->fv->cols[k].collation,
											a[k], b[k])))
			return false;
	return true;
}

/*
 * The key tables' arrays start on a cache line (so that no entry straddles
 * two) and are zeroed, as simplehash's default allocator would; they live
 * in the chunk's context, reset for the next chunk.  A table is created
 * for its number of keys and never grows (at most half full, SH_FILLFACTOR
 * 0.5) unless its probe runs get long; the array it then leaves behind
 * goes with the context, so the free is a no-op.
 */
static void *
alloc_aligned(MemoryContext cxt, Size size)
{
	char	   *p = MemoryContextAllocHuge(cxt, size + PG_CACHE_LINE_SIZE);

	return (void *) TYPEALIGN(PG_CACHE_LINE_SIZE, p);
}

#define SH_PREFIX asof8
#define SH_ELEMENT_TYPE AsofSlot8
#define SH_KEY_TYPE int64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) mix64((uint64) (k))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_FILLFACTOR (0.5)
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

#define SH_PREFIX asofk
#define SH_ELEMENT_TYPE AsofSlotK
#define SH_KEY_TYPE const Datum *
#define SH_KEY key
#define SH_HASH_KEY(tb, k) asof_hash((AsofKeys *) (tb)->private_data, (k))
#define SH_EQUAL(tb, a, b) asof_keys_equal((AsofKeys *) (tb)->private_data, (a), (b))
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_FILLFACTOR (0.5)
#define SH_USE_NONDEFAULT_ALLOCATOR
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static inline void *
asof8_allocate(asof8_hash *tb, Size size)
{
	void	   *p = alloc_aligned(tb->ctx, size);

	memset(p, 0, size);
	return p;
}

static inline void
asof8_free(asof8_hash *tb, void *pointer)
{
}

static inline void *
asofk_allocate(asofk_hash *tb, Size size)
{
	void	   *p = alloc_aligned(tb->ctx, size);

	memset(p, 0, size);
	return p;
}

static inline void
asofk_free(asofk_hash *tb, void *pointer)
{
}

/* The entity query's attribute named name, or InvalidAttrNumber. */
static AttrNumber
entity_attno(TupleDesc td, const char *name)
{
	int			i;

	for (i = 0; i < td->natts; i++)
		if (strcmp(NameStr(TupleDescAttr(td, i)->attname), name) == 0)
			return i + 1;
	return InvalidAttrNumber;
}

/*
 * Resolves the feature references (through fstore._resolve_features, so
 * that training sets and services read them alike) into views and output
 * columns.  Runs inside SPI.
 */
static void
resolve_features(AsofState *st, ArrayType *features)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1];
	int			i;
	int			nviews = 0;
	uint64		n;

	args[0] = PointerGetDatum(features);
	if (SPI_execute_with_args("SELECT view_name, feature FROM fstore._resolve_features($1) ORDER BY pos",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not resolve feature references");
	n = SPI_processed;
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a training set needs at least one feature")));

	st->nout = (int) n;
	st->out = palloc0(sizeof(AsofOut) * n);
	st->views = palloc0(sizeof(AsofView) * n);
	for (i = 0; i < (int) n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		char	   *vname = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);
		char	   *fname = SPI_getvalue(tup, SPI_tuptable->tupdesc, 2);
		FsView	   *fv = fs_catalog_view(vname);
		AsofView   *v;
		int			vi;
		int			c;

		for (vi = 0; vi < nviews; vi++)
			if (st->views[vi].fv == fv)
				break;
		if (vi == nviews)
		{
			v = &st->views[nviews++];
			v->fv = fv;
			v->cols = palloc(sizeof(int) * n);
		}
		v = &st->views[vi];
		for (c = fv->nkeys; c < fv->nkeys + fv->nfeatures; c++)
			if (strcmp(fv->cols[c].name, fname) == 0)
				break;
		if (c == fv->nkeys + fv->nfeatures)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("feature \"%s\" does not exist in feature view \"%s\"",
							fname, vname)));
		st->out[i].view = vi;
		st->out[i].slot = v->nfeat;
		v->cols[v->nfeat++] = c;
	}
	st->nviews = nviews;
}

/*
 * Checks the entity query's columns against the views' keys and sets up
 * one key set per entity.
 */
static void
bind_entity_columns(AsofState *st)
{
	TupleDesc	td = st->etupdesc;
	int			vi;

	st->ts_attno = entity_attno(td, "event_ts");
	if (st->ts_attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("entity query has no column \"event_ts\""),
				 errhint("Select the time of each row as event_ts.")));
	st->ts_type = TupleDescAttr(td, st->ts_attno - 1)->atttypid;
	if (st->ts_type != TIMESTAMPTZOID && st->ts_type != TIMESTAMPOID &&
		st->ts_type != DATEOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"event_ts\" of the entity query has type %s",
						format_type_be(st->ts_type)),
				 errhint("event_ts must be a timestamp with time zone (or a timestamp or date).")));

	st->keysets = palloc0(sizeof(AsofKeys) * st->nviews);
	for (vi = 0; vi < st->nviews; vi++)
	{
		AsofView   *v = &st->views[vi];
		FsView	   *fv = v->fv;
		AsofKeys   *ks = NULL;
		int			i;
		int			k;

		for (i = 0; i < st->nkeysets; i++)
			if (strcmp(st->keysets[i].entity, fv->entity) == 0)
				ks = &st->keysets[i];
		if (ks == NULL)
		{
			ks = &st->keysets[st->nkeysets++];
			ks->entity = fv->entity;
			ks->fv = fv;
			ks->nkeys = fv->nkeys;
			for (k = 0; k < fv->nkeys; k++)
			{
				FsColumn   *col = &fv->cols[k];
				AttrNumber	a = entity_attno(td, col->name);
				Oid			t;

				if (a == InvalidAttrNumber)
					ereport(ERROR,
							(errcode(ERRCODE_UNDEFINED_COLUMN),
							 errmsg("entity query has no column \"%s\", a key of feature view \"%s\"",
									col->name, fv->name)));
				t = TupleDescAttr(td, a - 1)->atttypid;
				if (t != col->typid)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"%s\" of the entity query has type %s, but the key of feature view \"%s\" has type %s",
									col->name, format_type_be(t), fv->name,
									format_type_be(col->typid)),
							 errhint("Cast it in the entity query: %s::%s.",
									 quote_identifier(col->name),
									 format_type_be(col->typid))));
				ks->attno[k] = a;
				fmgr_info(fv->key_eq_proc[k], &ks->eq[k]);
				if (!col->typbyval)
					ks->byref = true;
			}
			ks->int8_key = (fv->nkeys == 1 && fv->cols[0].typbyval &&
							fv->cols[0].typlen == 8 &&
							(fv->cols[0].typid == INT8OID ||
							 fv->cols[0].typid == TIMESTAMPTZOID ||
							 fv->cols[0].typid == TIMESTAMPOID));
		}
		v->keys = ks;
	}
}

/* The result type: the entity query's columns, then the features. */
static void
check_result_type(AsofState *st, TupleDesc expected)
{
	TupleDesc	td = st->etupdesc;
	int			natts = td->natts + st->nout;
	int			i;

	if (expected->natts != natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column definition list of fstore.as_of_join has %d columns, but its result has %d",
						expected->natts, natts),
				 errhint("Use the column list that fs_training_set_query writes.")));
	for (i = 0; i < natts; i++)
	{
		Oid			want;
		Oid			have = TupleDescAttr(expected, i)->atttypid;

		if (i < td->natts)
			want = TupleDescAttr(td, i)->atttypid;
		else
		{
			AsofOut    *o = &st->out[i - td->natts];
			AsofView   *v = &st->views[o->view];

			want = v->fv->cols[v->cols[o->slot]].typid;
		}
		if (want != have)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d of the column definition list of fstore.as_of_join has type %s, but the result has type %s",
							i + 1, format_type_be(have), format_type_be(want)),
					 errhint("Use the column list that fs_training_set_query writes.")));
	}
}

static TimestampTz
entity_ts(AsofState *st, Datum d)
{
	if (st->ts_type == TIMESTAMPTZOID)
		return DatumGetTimestampTz(d);
	if (st->ts_type == TIMESTAMPOID)
		return DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, d));
	return DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz, d));
}

/* Places the fetched values of each view in a compact row layout. */
static void
layout_views(AsofState *st)
{
	int			vi;

	for (vi = 0; vi < st->nviews; vi++)
	{
		AsofView   *v = &st->views[vi];
		int			at = 0;
		int			f;

		v->off = palloc(sizeof(int) * v->nfeat);
		for (f = 0; f < v->nfeat; f++)
		{
			FsColumn   *col = &v->fv->cols[v->cols[f]];
			int			len = (col->typbyval && col->typlen > 0) ? col->typlen : (int) sizeof(Datum);

			at = TYPEALIGN(len, at);
			v->off[f] = at;
			at += len;
		}
		v->present_off = at;
		v->stride = MAXALIGN(at + v->nfeat);
	}
}

/* Bytes one entity row costs in the chunk's arrays (by-reference values not counted). */
static Size
row_footprint(AsofState *st)
{
	Size		sz = sizeof(int64) + sizeof(bool);
	int			i;

	for (i = 0; i < st->nkeysets; i++)
		sz += st->keysets[i].nkeys * (sizeof(Datum) + (st->keysets[i].byref ? 16 : 0)) +
			sizeof(bool) + sizeof(int32) + sizeof(int64) +
			2 * sizeof(AsofSlot8) + sizeof(int32) +	/* half-full table, runs; keys ~ rows */
			sizeof(uint32) + sizeof(int64) + sizeof(AsofRowKey);	/* sorting */
	for (i = 0; i < st->nviews; i++)
		sz += sizeof(AsofCand) + st->views[i].stride + sizeof(AsofTidPos);
	return sz;
}

static void
grow_arrays(AsofState *st, int newmax)
{
	int			i;

	if (st->ets == NULL)
	{
		st->ets = MemoryContextAllocHuge(st->chunkcxt, sizeof(int64) * newmax);
		st->etsnull = MemoryContextAllocHuge(st->chunkcxt, sizeof(bool) * newmax);
		for (i = 0; i < st->nkeysets; i++)
		{
			AsofKeys   *ks = &st->keysets[i];

			ks->vals = MemoryContextAllocHuge(st->chunkcxt, sizeof(Datum) * ks->nkeys * (Size) newmax);
			ks->isnull = MemoryContextAllocHuge(st->chunkcxt, sizeof(bool) * newmax);
		}
	}
	else
	{
		st->ets = repalloc_huge(st->ets, sizeof(int64) * newmax);
		st->etsnull = repalloc_huge(st->etsnull, sizeof(bool) * newmax);
		for (i = 0; i < st->nkeysets; i++)
		{
			AsofKeys   *ks = &st->keysets[i];

			ks->vals = repalloc_huge(ks->vals, sizeof(Datum) * ks->nkeys * (Size) newmax);
			ks->isnull = repalloc_huge(ks->isnull, sizeof(bool) * newmax);
		}
	}
	st->maxrows = newmax;
}

/* Adds one entity row (an SPI tuple) to the chunk. */
static void
add_row(AsofState *st, HeapTuple tup)
{
	TupleDesc	td = st->etupdesc;
	int			r = st->nrows;
	bool		isnull;
	Datum		d;
	int			i;
	int			k;

	if (r == st->maxrows)
		grow_arrays(st, st->maxrows * 2);

	tuplestore_puttuple(st->rows, tup);

	d = heap_getattr(tup, st->ts_attno, td, &isnull);
	st->etsnull[r] = isnull;
	st->ets[r] = isnull ? 0 : entity_ts(st, d);

	for (i = 0; i < st->nkeysets; i++)
	{
		AsofKeys   *ks = &st->keysets[i];
		Datum	   *vals = &ks->vals[(Size) r * ks->nkeys];

		ks->isnull[r] = false;
		for (k = 0; k < ks->nkeys; k++)
		{
			FsColumn   *col = &ks->fv->cols[k];

			vals[k] = heap_getattr(tup, ks->attno[k], td, &isnull);
			if (isnull)
			{
				ks->isnull[r] = true;
				vals[k] = (Datum) 0;
			}
			else if (!col->typbyval)
				vals[k] = datumCopy(vals[k], false, col->typlen);
		}
	}
	st->nrows++;
}

/* order of two rows on the general path: (key hash, key, event_ts, row) */
static inline int
sorted_cmp(const int32 *pa, const int32 *pb, AsofKeys *ks)
{
	int			a = *pa;
	int			b = *pb;
	int			c;

	/* while sorting, positions are rows and sorted_ts is by row */
	if (ks->row_hash[a] != ks->row_hash[b])
		return ks->row_hash[a] < ks->row_hash[b] ? -1 : 1;
	if (ks->int8_key)
	{
		int64		ka = DatumGetInt64(ks->vals[a]);
		int64		kb = DatumGetInt64(ks->vals[b]);

		c = (ka > kb) - (ka < kb);
	}
	else
		c = fs_keys_compare(ks->fv, &ks->vals[(Size) a * ks->nkeys], &ks->vals[(Size) b * ks->nkeys]);
	if (c != 0)
		return c;
	if (ks->sorted_ts[a] != ks->sorted_ts[b])
		return ks->sorted_ts[a] < ks->sorted_ts[b] ? -1 : 1;
	return (a > b) - (a < b);
}

#define ST_SORT sort_rows
#define ST_ELEMENT_TYPE int32
#define ST_COMPARE_ARG_TYPE AsofKeys
#define ST_COMPARE(a, b, arg) sorted_cmp(a, b, arg)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * Sorts each key set's rows by (hash, key, event_ts) and builds its key
 * table: one entry per distinct key, holding the key's range of sorted
 * positions and its latest event_ts.
 */
static void
hash_chunk(AsofState *st)
{
	int			i;
	int			r;

	for (i = 0; i < st->nkeysets; i++)
	{
		AsofKeys   *ks = &st->keysets[i];
		int64	   *row_ts;
		int32	   *runs;
		int			nkeys = 0;
		int			s;
		int			e;
		int			k;

		ks->row_hash = MemoryContextAllocHuge(st->chunkcxt, sizeof(uint32) * Max(st->nrows, 1));
		row_ts = MemoryContextAllocHuge(st->chunkcxt, sizeof(int64) * Max(st->nrows, 1));
		ks->sorted_row = MemoryContextAllocHuge(st->chunkcxt, sizeof(int32) * Max(st->nrows, 1));
		ks->nsorted = 0;
		for (r = 0; r < st->nrows; r++)
		{
			if (ks->isnull[r] || st->etsnull[r])
				continue;
			ks->row_hash[r] = asof_hash(ks, &ks->vals[(Size) r * ks->nkeys]);
			row_ts[r] = st->ets[r];
			ks->sorted_row[ks->nsorted++] = r;
		}
		ks->sorted_ts = row_ts;
		if (ks->int8_key)
		{
			AsofRowKey *rk = MemoryContextAllocHuge(st->chunkcxt,
													sizeof(AsofRowKey) * Max(ks->nsorted, 1));

			for (s = 0; s < ks->nsorted; s++)
			{
				r = ks->sorted_row[s];
				rk[s].hash = ks->row_hash[r];
				rk[s].row = r;
				rk[s].key = DatumGetInt64(ks->vals[r]);
				rk[s].ts = row_ts[r];
			}
			sort_rowkeys(rk, ks->nsorted);
			for (s = 0; s < ks->nsorted; s++)
				ks->sorted_row[s] = rk[s].row;
			pfree(rk);
		}
		else
			sort_rows(ks->sorted_row, ks->nsorted, ks);

		ks->sorted_ts = MemoryContextAllocHuge(st->chunkcxt, sizeof(int64) * Max(ks->nsorted, 1));
		for (s = 0; s < ks->nsorted; s++)
			ks->sorted_ts[s] = row_ts[ks->sorted_row[s]];
		pfree(row_ts);

		/* the distinct keys: runs[k] .. runs[k + 1] - 1 are key k's positions */
		runs = MemoryContextAllocHuge(st->chunkcxt, sizeof(int32) * (ks->nsorted + 1));
		for (s = 0; s < ks->nsorted; s = e)
		{
			int			a = ks->sorted_row[s];

			for (e = s + 1; e < ks->nsorted; e++)
			{
				int			b = ks->sorted_row[e];

				if (ks->row_hash[a] != ks->row_hash[b] ||
					!asof_keys_equal(ks, &ks->vals[(Size) a * ks->nkeys], &ks->vals[(Size) b * ks->nkeys]))
					break;
			}
			runs[nkeys++] = s;
		}
		runs[nkeys] = ks->nsorted;

		ks->keys8 = NULL;
		ks->keysk = NULL;
		if (ks->int8_key)
			ks->keys8 = asof8_create(st->chunkcxt, Max(nkeys, 1), ks);
		else
			ks->keysk = asofk_create(st->chunkcxt, Max(nkeys, 1), ks);
		for (k = 0; k < nkeys; k++)
		{
			int			a = ks->sorted_row[runs[k]];
			uint32		h = ks->row_hash[a];
			AsofRun    *run;
			bool		found;

			if (ks->int8_key)
				run = &asof8_insert_hash(ks->keys8, DatumGetInt64(ks->vals[a]), h, &found)->run;
			else
				run = &asofk_insert_hash(ks->keysk, &ks->vals[(Size) a * ks->nkeys], h, &found)->run;
			Assert(!found);
			run->first = runs[k];
			run->count = runs[k + 1] - runs[k];
			run->maxts = ks->sorted_ts[runs[k + 1] - 1];
		}
		ks->runs = runs;
		ks->nruns = nkeys;
		pfree(ks->row_hash);
		ks->row_hash = NULL;
	}
}

/* The run of the chunk's rows with this key (fast path), or NULL. */
static inline AsofRun *
find_run8(AsofKeys *ks, int64 key, uint32 h)
{
	AsofSlot8  *e = asof8_lookup_hash(ks->keys8, key, h);

	return e ? &e->run : NULL;
}

/* The run of the chunk's rows with these key values, or NULL. */
static inline AsofRun *
find_runk(AsofKeys *ks, const Datum *keys, uint32 h)
{
	AsofSlotK  *e = asofk_lookup_hash(ks->keysk, keys, h);

	return e ? &e->run : NULL;
}

/* true if candidate (ts, created, tid) beats c */
static inline bool
better(const AsofCand *c, int64 ts, int64 created, const ItemPointerData *tid)
{
	if (!ItemPointerIsValid(&c->tid) || ts > c->ts)
		return true;
	if (ts < c->ts)
		return false;
	if (created != c->created)
		return created > c->created;
	return ItemPointerCompare((ItemPointer) tid, (ItemPointer) &c->tid) > 0;
}

/*
 * Offers history row (ts, created, tid) to the rows of a key.  Only the
 * first row (in time order) that may take it records it: every later row
 * may take it too, and gets it from the running maximum that carry_best
 * takes once the pass is over.  So a history row costs a search among its
 * key's rows, not a visit to each of them.
 */
static inline void
offer(AsofCand *cand, const int64 *ets, const AsofRun *sl, int64 ts, int64 created,
	  ItemPointer tid)
{
	int			lo = sl->first;
	int			hi = sl->first + sl->count;	/* first row with ets >= ts is in [lo, hi] */

	if (sl->count <= 8)
	{
		while (lo < hi && ets[lo] < ts)
			lo++;
	}
	else
	{
		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (ets[mid] < ts)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	if (lo < sl->first + sl->count && better(&cand[lo], ts, created, tid))
	{
		cand[lo].ts = ts;
		cand[lo].created = created;
		cand[lo].tid = *tid;
	}
}

/*
 * After a pass: each row's best is the best recorded at it or at an
 * earlier row of its key (those rows' candidates are at or before their
 * event_ts, so at or before this row's too).
 */
static void
carry_best(AsofKeys *ks, AsofCand *cand)
{
	int			k;
	int			s;

	/* key by key in sorted order: one sequential sweep over the candidates */
	for (k = 0; k < ks->nruns; k++)
	{
		for (s = ks->runs[k] + 1; s < ks->runs[k + 1]; s++)
		{
			AsofCand   *prev = &cand[s - 1];

			if (ItemPointerIsValid(&prev->tid) &&
				better(&cand[s], prev->ts, prev->created, &prev->tid))
				cand[s] = *prev;
		}
	}
}

/* history rows in flight in the fast path's pipeline */
#define ASOF_AHEAD	16

typedef struct AsofPending
{
	int64		key;
	int64		ts;
	int64		created;
	ItemPointerData tid;
	uint32		hash;
	AsofRun    *run;
} AsofPending;

/*
 * Step 2 for one view: one pass over its history, keeping the best
 * candidate of every entity row of the chunk.
 *
 * On the fast path (one integer key) the pass is a software pipeline: a
 * history row's bucket of the key table is prefetched when the row is
 * read, looked up ASOF_AHEAD / 2 rows later (its candidates prefetched
 * then) and offered ASOF_AHEAD rows later, so that the random memory
 * accesses overlap instead of stalling the pass one after the other.
 */
static void
scan_history(AsofState *st, AsofView *v)
{
	FsView	   *fv = v->fv;
	AsofKeys   *ks = v->keys;
	AttrNumber	ts_att = fv->cols[fv->ts_col].offline_attnum;
	AttrNumber	cr_att = fv->created_at_attnum;
	AttrNumber	key_att = fv->cols[0].offline_attnum;
	TableScanDesc scan;
	TupleTableSlot *slot;
	AsofPending ring[ASOF_AHEAD];
	uint64		nread = 0;
	uint64		i;
	int			s;
	MemoryContext tmpcxt = NULL;

	for (s = 0; s < ks->nsorted; s++)
		ItemPointerSetInvalid(&v->cand[s].tid);
	if (ks->nsorted == 0)
		return;

	if (!ks->int8_key)
		tmpcxt = AllocSetContextCreate(CurrentMemoryContext, "fstore as_of_join key",
									   ALLOCSET_SMALL_SIZES);
	/* one slot for the whole pass: each row replaces the previous one */
	slot = table_slot_create(v->rel, NULL);
	scan = table_beginscan(v->rel, st->snapshot, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull = false;
		int64		ts;
		int64		created;

		CHECK_FOR_INTERRUPTS();

		if (!ks->int8_key)
		{
			Datum		hkeys[FS_MAX_KEYS];
			AsofRun    *sl;
			MemoryContext old;
			int			k;

			for (k = 0; k < ks->nkeys && !isnull; k++)
				hkeys[k] = slot_getattr(slot, fv->cols[k].offline_attnum, &isnull);
			if (isnull)
				continue;
			/* a type's hash or equality may allocate (numeric detoasts) */
			MemoryContextReset(tmpcxt);
			old = MemoryContextSwitchTo(tmpcxt);
			sl = find_runk(ks, hkeys, asof_hash(ks, hkeys));
			MemoryContextSwitchTo(old);
			if (sl == NULL)
				continue;
			ts = DatumGetTimestampTz(slot_getattr(slot, ts_att, &isnull));
			if (ts > sl->maxts)
				continue;
			created = DatumGetTimestampTz(slot_getattr(slot, cr_att, &isnull));
			if (st->has_cutoff && created > st->cutoff)
				continue;		/* written after the cutoff: not known then */
			offer(v->cand, ks->sorted_ts, sl, ts, created, &slot->tts_tid);
			continue;
		}

		/* fast path: read, hash and prefetch the key's bucket */
		{
			AsofPending *p = &ring[nread % ASOF_AHEAD];
			Datum		key = slot_getattr(slot, key_att, &isnull);

			if (isnull)
				continue;
			p->key = DatumGetInt64(key);
			p->hash = asof_hash(ks, &key);
			p->ts = DatumGetTimestampTz(slot_getattr(slot, ts_att, &isnull));
			p->created = DatumGetTimestampTz(slot_getattr(slot, cr_att, &isnull));
			p->tid = slot->tts_tid;
			p->run = NULL;
			/* simplehash's first bucket for a hash: hash & sizemask */
			fs_prefetch(&ks->keys8->data[p->hash & ks->keys8->sizemask]);
			nread++;
		}
		/* look up the key of the row read ASOF_AHEAD / 2 ago */
		if (nread > ASOF_AHEAD / 2)
		{
			AsofPending *p = &ring[(nread - 1 - ASOF_AHEAD / 2) % ASOF_AHEAD];

			p->run = find_run8(ks, p->key, p->hash);
			if (p->run && p->ts <= p->run->maxts &&
				!(st->has_cutoff && p->created > st->cutoff))
			{
				fs_prefetch(&v->cand[p->run->first]);
				fs_prefetch(&ks->sorted_ts[p->run->first]);
			}
			else
				p->run = NULL;
		}
		/* offer the row read ASOF_AHEAD - 1 ago */
		if (nread >= ASOF_AHEAD)
		{
			AsofPending *p = &ring[nread % ASOF_AHEAD];

			if (p->run)
				offer(v->cand, ks->sorted_ts, p->run, p->ts, p->created, &p->tid);
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	if (tmpcxt)
		MemoryContextDelete(tmpcxt);

	/* drain the pipeline (rows read in the last ASOF_AHEAD - 1 steps) */
	if (ks->int8_key)
	{
		uint64		lo = nread >= ASOF_AHEAD ? nread - ASOF_AHEAD + 1 : 0;

		for (i = lo; i < nread; i++)
		{
			AsofPending *p = &ring[i % ASOF_AHEAD];

			if (i + ASOF_AHEAD / 2 >= nread)
			{
				/* not looked up yet */
				p->run = find_run8(ks, p->key, p->hash);
				if (p->run && (p->ts > p->run->maxts ||
							   (st->has_cutoff && p->created > st->cutoff)))
					p->run = NULL;
			}
			if (p->run)
				offer(v->cand, ks->sorted_ts, p->run, p->ts, p->created, &p->tid);
		}
	}

	carry_best(ks, v->cand);
}

/*
 * Step 3 for one view: drops candidates beyond the ttl, then reads the
 * winners in TID order through the table access method and keeps their
 * feature values.
 *
 * Each winner is read by an index fetch (table_index_fetch_tuple, with the
 * statement's snapshot), which keeps its page pinned from one TID to the
 * next: winners sorted by TID cost a buffer lookup per page, and a content
 * lock and a visibility check per winner.  An index fetch takes its TID as
 * the root of a HOT chain, so when the winner the pass found is a
 * heap-only tuple (its row was updated in place) the fetch finds nothing,
 * and that winner is read at its exact TID (table_tuple_fetch_row_version)
 * instead.  Under the snapshot the pass used the winner is the one visible
 * member of its chain, so a fetch that succeeds returns that very TID (a
 * different one also falls back to the exact read); a winner neither
 * finds is gone, which that snapshot rules out.
 *
 * Alternatives measured on bench/training.sh's data (two rounds of each
 * build in one run on a loaded machine, medians, 2,000,000 entity rows):
 * the heap-page loop this replaces (ReadBuffer, a visibility check per
 * winner) 23.8 s; this fetch 23.8 s; TID range scans over runs of winners
 * on consecutive blocks, merged with the sorted winners, 26.7 s (they
 * return every tuple of those pages, most of them not winners); one TID
 * range per block, from its first winner to its last, 24.6 s.  Reading
 * every winner with table_tuple_fetch_row_version (a buffer lookup, pin
 * and content lock per winner) was 30% slower than the heap-page loop in
 * an earlier measurement (1.58 s against 1.20 s, 400,000 entity rows over
 * 2,000,000 history rows).  bench/run.sh training against main's loop (5
 * rounds, loaded machine) gave 22.5 s against 20.7 s, with overlapping
 * ranges: not settled (bench/README.md).
 */
static void
fetch_winners(AsofState *st, AsofView *v)
{
	FsView	   *fv = v->fv;
	AsofKeys   *ks = v->keys;
	AsofTidPos *order;
	TupleTableSlot *slot;
	IndexFetchTableData *fetch;
	AttrNumber	natts = 0;
	int			n = 0;
	int			s;
	int			f;
	int			i;

	v->data = MemoryContextAllocHuge(st->chunkcxt, (Size) v->stride * Max(st->nrows, 1));
	memset(v->data, 0, (Size) v->stride * st->nrows);

	/* sorted positions whose row has a candidate within the ttl */
	order = MemoryContextAllocHuge(st->chunkcxt, sizeof(AsofTidPos) * Max(ks->nsorted, 1));
	for (s = 0; s < ks->nsorted; s++)
	{
		AsofCand   *c = &v->cand[s];

		if (!ItemPointerIsValid(&c->tid))
			continue;
		if (fv->has_ttl)
		{
			TimestampTz lo;

			lo = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														 TimestampTzGetDatum(ks->sorted_ts[s]),
														 IntervalPGetDatum(&fv->ttl)));
			if (c->ts < lo)
				continue;		/* the latest value had expired by then */
		}
		order[n].tid = ((uint64) ItemPointerGetBlockNumber(&c->tid) << 16) |
			ItemPointerGetOffsetNumber(&c->tid);
		order[n].pos = s;
		n++;
	}
	if (n == 0)
		return;
	sort_tidpos(order, n);

	/* the history columns to deform: up to the last fetched feature */
	for (f = 0; f < v->nfeat; f++)
		natts = Max(natts, fv->cols[v->cols[f]].offline_attnum);

	/*
	 * The slot keeps the page of its tuple pinned, so the values are read
	 * and detoasted (which reads other relations) with no buffer lock held.
	 */
	slot = table_slot_create(v->rel, NULL);
	fetch = table_index_fetch_begin(v->rel);
	i = 0;
	while (i < n)
	{
		ItemPointerData want;
		ItemPointerData tid;
		bool		call_again = false;
		char	   *row;
		int			j;

		CHECK_FOR_INTERRUPTS();
		ItemPointerSet(&want, (BlockNumber) (order[i].tid >> 16),
					   (OffsetNumber) (order[i].tid & 0xffff));
		tid = want;
		if (!table_index_fetch_tuple(fetch, &tid, st->snapshot, slot, &call_again, NULL) ||
			!ItemPointerEquals(&tid, &want))
		{
			/* a heap-only tuple: not the start of a HOT chain */
			tid = want;
			if (!table_tuple_fetch_row_version(v->rel, &tid, st->snapshot, slot))
				elog(ERROR, "history row (%u,%u) of feature view \"%s\" vanished",
					 ItemPointerGetBlockNumber(&want), ItemPointerGetOffsetNumber(&want),
					 fv->name);
		}

		/* the first row of the run gets copies, the others share them */
		slot_getsomeattrs(slot, natts);
		row = v->data + (Size) v->stride * ks->sorted_row[order[i].pos];
		for (f = 0; f < v->nfeat; f++)
		{
			FsColumn   *col = &fv->cols[v->cols[f]];
			Datum		d = slot->tts_values[col->offline_attnum - 1];

			if (slot->tts_isnull[col->offline_attnum - 1])
				continue;
			row[v->present_off + f] = 1;
			if (col->typbyval && col->typlen > 0)
			{
				store_att_byval(row + v->off[f], d, col->typlen);
				continue;
			}
			if (col->typlen == -1 && VARATT_IS_EXTENDED(DatumGetPointer(d)))
				d = PointerGetDatum(detoast_attr((struct varlena *) DatumGetPointer(d)));
			else
				d = datumCopy(d, false, col->typlen);
			memcpy(row + v->off[f], &d, sizeof(Datum));
		}
		for (j = i + 1; j < n && order[j].tid == order[i].tid; j++)
			memcpy(v->data + (Size) v->stride * ks->sorted_row[order[j].pos], row, v->stride);
		i = j;
	}
	table_index_fetch_end(fetch);
	ExecDropSingleTupleTableSlot(slot);
}

/* Emits the chunk's rows, in order, into the result. */
static void
emit_chunk(AsofState *st, Tuplestorestate *result, TupleDesc rdesc)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(st->etupdesc, &TTSOpsMinimalTuple);
	int			ne = st->etupdesc->natts;
	Datum	   *values = palloc(sizeof(Datum) * rdesc->natts);
	bool	   *nulls = palloc(sizeof(bool) * rdesc->natts);
	int			r = 0;

	while (tuplestore_gettupleslot(st->rows, true, false, slot))
	{
		int			o;

		slot_getallattrs(slot);
		memcpy(values, slot->tts_values, sizeof(Datum) * ne);
		memcpy(nulls, slot->tts_isnull, sizeof(bool) * ne);
		for (o = 0; o < st->nout; o++)
		{
			AsofView   *v = &st->views[st->out[o].view];
			int			f = st->out[o].slot;
			char	   *row = v->data + (Size) v->stride * r;
			FsColumn   *col = &v->fv->cols[v->cols[f]];

			nulls[ne + o] = (row[v->present_off + f] == 0);
			if (nulls[ne + o])
				values[ne + o] = (Datum) 0;
			else if (col->typbyval && col->typlen > 0)
				values[ne + o] = fetch_att(row + v->off[f], true, col->typlen);
			else
				memcpy(&values[ne + o], row + v->off[f], sizeof(Datum));
		}
		tuplestore_putvalues(result, rdesc, values, nulls);
		r++;
	}
	Assert(r == st->nrows);
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * fstore.as_of_join(entity_query text, features text[],
 *					  created_before timestamptz DEFAULT NULL)
 *		RETURNS SETOF record
 *
 * Called with a column definition list: the entity query's columns, then
 * one per feature (fs_training_set_query writes it).
 */
Datum
fs_as_of_join(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext callcxt = CurrentMemoryContext;
	AsofState  *st;
	char	   *query;
	SPIPlanPtr	plan;
	Portal		portal;
	Size		budget;
	int			chunk_rows;
	int			vi;
	bool		eof = false;
	uint64		pos = 0;
	uint64		have = 0;
	int64		done = 0;
	SPITupleTable *batch = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("entity query must not be NULL")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("features must not be NULL")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);

	st = palloc0(sizeof(AsofState));
	st->has_cutoff = !PG_ARGISNULL(2);
	if (st->has_cutoff)
		st->cutoff = PG_GETARG_TIMESTAMPTZ(2);
	st->snapshot = GetActiveSnapshot();
	query = fs_single_select(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	MemoryContextSwitchTo(callcxt);
	resolve_features(st, PG_GETARG_ARRAYTYPE_P(1));

	/* the history tables: privileges first, then a lock for the call */
	for (vi = 0; vi < st->nviews; vi++)
	{
		fs_check_select(st->views[vi].fv->offline_relid);
		st->views[vi].rel = table_open(st->views[vi].fv->offline_relid, AccessShareLock);
		fs_catalog_check_table(st->views[vi].fv, FS_TABLE_OFFLINE,
							   RelationGetDescr(st->views[vi].rel));
	}

	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	MemoryContextSwitchTo(callcxt);
	st->etupdesc = CreateTupleDescCopy(portal->tupDesc);

	bind_entity_columns(st);
	check_result_type(st, rsinfo->setDesc);
	layout_views(st);

	budget = (Size) fs_training_work_mem * 1024;
	chunk_rows = (int) Min(budget / row_footprint(st), (Size) (INT_MAX / (2 * FS_MAX_KEYS)));
	chunk_rows = Max(chunk_rows, 1000);

	/*
	 * Chunks of even size by the planner's estimate of the entity rows, so
	 * that a small remainder does not cost a whole pass of its own.
	 */
	if (portal->stmts != NIL && IsA(linitial(portal->stmts), PlannedStmt))
	{
		double		est = linitial_node(PlannedStmt, portal->stmts)->planTree->plan_rows;

		if (est > chunk_rows)
		{
			double		nchunks = ceil(est / chunk_rows);

			chunk_rows = Max((int) ceil(est / nchunks), 1000);
		}
	}

	st->chunkcxt = AllocSetContextCreate(callcxt, "fstore as_of_join chunk",
										 ALLOCSET_DEFAULT_SIZES);
	fs_progress_phase("joining");

	while (!eof)
	{
		MemoryContext old;

		MemoryContextReset(st->chunkcxt);
		old = MemoryContextSwitchTo(st->chunkcxt);
		st->ets = NULL;
		st->nrows = 0;
		grow_arrays(st, Min(chunk_rows, 16384));
		st->rows = tuplestore_begin_heap(false, false, work_mem);

		/* read a chunk of entity rows */
		while (st->nrows < chunk_rows)
		{
			if (pos == have)
			{
				if (batch)
					SPI_freetuptable(batch);
				MemoryContextSwitchTo(old);
				SPI_cursor_fetch(portal, true, ASOF_FETCH);
				MemoryContextSwitchTo(st->chunkcxt);
				batch = SPI_tuptable;
				have = SPI_processed;
				pos = 0;
				if (have == 0)
				{
					eof = true;
					break;
				}
			}
			add_row(st, batch->vals[pos++]);
		}

		if (st->nrows > 0)
		{
			hash_chunk(st);
			for (vi = 0; vi < st->nviews; vi++)
			{
				AsofView   *v = &st->views[vi];

				v->cand = MemoryContextAllocHuge(st->chunkcxt, sizeof(AsofCand) * Max(v->keys->nsorted, 1));
				scan_history(st, v);
				fetch_winners(st, v);
			}
			emit_chunk(st, rsinfo->setResult, rsinfo->setDesc);
			done += st->nrows;
			fs_progress_rows(done, -2);
		}
		tuplestore_end(st->rows);
		MemoryContextSwitchTo(old);
	}

	if (batch)
		SPI_freetuptable(batch);
	SPI_cursor_close(portal);
	for (vi = 0; vi < st->nviews; vi++)
		table_close(st->views[vi].rel, NoLock);
	MemoryContextDelete(st->chunkcxt);
	SPI_finish();
	return (Datum) 0;
}

void
fs_training_init(void)
{
	DefineCustomIntVariable("fstore.training_work_mem",
							"Memory for one chunk of entity rows in the hash strategy of training sets.",
							"Each chunk reads the history of every feature view once; a larger chunk means fewer passes.",
							&fs_training_work_mem,
							262144, 1024, MAX_KILOBYTES,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
}
