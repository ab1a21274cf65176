/*
 * read.c
 *		fs_get_many and fs_get_many_packed: features of many keys in one
 *		call, for a feature view or a feature service.
 *
 * One call: resolve the row type to a view or service, lock its online
 * tables (which also brings the metadata up to date), check privileges,
 * deconstruct and sort the keys once (keys.c), then per view look the
 * distinct keys up in the hot cache, read the misses from the online table
 * with one index descent each in key order, offer them to the cache, and
 * finally emit exactly one answer per input key in input order.  Missing
 * keys, expired values (ttl) and keys with a NULL field come back with
 * their key columns filled and every feature NULL; a NULL key comes back
 * as a row of NULLs.
 *
 * The cache is bypassed (reads go to the table with the statement's
 * snapshot) on a hot standby, under REPEATABLE READ or SERIALIZABLE, for
 * views this transaction has written, and when fstore is not preloaded.
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "aggregate/aggregate.h"
#include "cache/cache.h"
#include "online/online.h"
#include "util/packed.h"
#include "shard/shard.h"
#include "stats/stats.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(fs_get_many);
PG_FUNCTION_INFO_V1(fs_get_many_packed);

void
fs_online_fetch(FsView *view, Relation rel, FsKeyBatch *b,
				const int *which, int n, HeapTuple *rows, Snapshot snapshot)
{
	Relation	idx;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData sk[FS_MAX_KEYS];
	TupleDesc	desc = RelationGetDescr(rel);
	int			nk = view->nkeys;
	int			i;
	int			k;

	if (n == 0)
		return;
	idx = index_open(view->pkey_relid, AccessShareLock);
	for (k = 0; k < nk; k++)
		ScanKeyEntryInitialize(&sk[k], 0, k + 1, BTEqualStrategyNumber,
							   view->key_opcintype[k], view->cols[k].collation,
							   view->key_eq_proc[k], (Datum) 0);
	scan = index_beginscan(rel, idx, snapshot, nk, 0);
	slot = table_slot_create(rel, NULL);

	for (i = 0; i < n; i++)
	{
		int			d = which[i];
		Datum	   *kv = FS_KEY_VALUES(b, d);

		CHECK_FOR_INTERRUPTS();
		for (k = 0; k < nk; k++)
			sk[k].sk_argument = kv[k];
		index_rescan(scan, sk, nk, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, NULL);

			/*
			 * A plain copy of the stored tuple, unless it predates columns
			 * added later: then its missing values are filled in here, since
			 * readers of the result only know the row type.
			 */
			if (HeapTupleHeaderGetNatts(tuple->t_data) == desc->natts)
				rows[d] = heap_copytuple(tuple);
			else
			{
				slot_getallattrs(slot);
				rows[d] = heap_form_tuple(desc, slot->tts_values, slot->tts_isnull);
			}
		}
		else
			rows[d] = NULL;
	}

	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	index_close(idx, AccessShareLock);
}

/*
 * Rows are copied out of the cache into memory each backend keeps across
 * calls (no megabytes obtained and returned per call).  A call that runs
 * while another is using it (a key type's functions could call
 * fs_get_many) gets memory of its own instead.
 */
static FsRowBuf read_buf;
static bool read_buf_busy = false;

static void
read_buf_release(void *arg)
{
	read_buf_busy = false;
}

/* event_ts of a row (which is never NULL in the table) */
static TimestampTz
row_event_ts(FsView *view, FsCachedRow *row, TupleDesc desc)
{
	HeapTupleData t;
	TimestampTz ts;
	bool		isnull;
	Datum		d;

	if (row->kind == FS_CACHED_PACKED)
	{
		memcpy(&ts, row->data + 1, sizeof(ts));
		return ts;
	}
	t.t_len = row->len;
	t.t_data = (HeapTupleHeader) row->data;
	d = heap_getattr(&t, view->cols[view->ts_col].online_attnum, desc, &isnull);
	return isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
}

/* Drops rows whose event_ts is older than the view's ttl (relative to now()). */
static void
expire_rows(FsView *view, TupleDesc desc, FsKeyBatch *b, FsCachedRow *rows)
{
	TimestampTz cutoff;
	int			d;

	if (!view->has_ttl)
		return;
	cutoff = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
													 IntervalPGetDatum(&view->ttl)));
	for (d = 0; d < b->ndistinct; d++)
		if (rows[d].kind != FS_CACHED_ABSENT &&
			row_event_ts(view, &rows[d], desc) < cutoff)
			rows[d].kind = FS_CACHED_ABSENT;
}

/* a row as a HeapTuple header on the caller's stack */
static inline HeapTuple
row_tuple(FsCachedRow *row, HeapTuple t, Oid relid)
{
	t->t_len = row->len;
	ItemPointerSetInvalid(&t->t_self);
	t->t_tableOid = relid;
	t->t_data = (HeapTupleHeader) row->data;
	return t;
}

/* heap tuples (NULL: no row) as rows of the read path */
static FsCachedRow *
rows_from_tuples(HeapTuple *tuples, int n)
{
	FsCachedRow *rows = palloc0(sizeof(FsCachedRow) * Max(n, 1));
	int			d;

	for (d = 0; d < n; d++)
	{
		if (tuples[d] == NULL)
			rows[d].kind = FS_CACHED_ABSENT;
		else
		{
			rows[d].kind = FS_CACHED_TUPLE;
			rows[d].len = tuples[d]->t_len;
			rows[d].data = (char *) tuples[d]->t_data;
		}
	}
	return rows;
}

/*
 * One view's rows for every distinct key of the batch: from the cache where
 * it can answer (as packed records when plan is given and applies), from
 * the table otherwise.  Every row comes back as ABSENT, TUPLE or PACKED.
 * dest (or NULL) gives, per distinct key, where its packed record is to be
 * written by the cache lookup.
 */
static FsCachedRow *
read_view_rows(FsView *view, FsKeyBatch *b, const FsPackPlan *plan,
			   char **dest, FsRowBuf *buf, TupleDesc *descp)
{
	Relation	rel;
	int			n = b->ndistinct;
	FsCachedRow *rows;
	HeapTuple  *fetched = NULL;
	int		   *which;
	int			nmiss = 0;
	int64		hits = 0;
	int			d;
	int			i;

	if (fs_shard_is_sharded(view))	/* the shards answer (src/shard) */
		return rows_from_tuples(fs_shard_read_rows(view, b, descp), n);
	rel = table_open(view->online_relid, AccessShareLock);
	rows = palloc0(sizeof(FsCachedRow) * Max(n, 1));
	which = palloc(sizeof(int) * Max(n, 1));
	if (n > 0 && fs_cache_usable(view))
	{
		FsCacheFill fill;

		if (dest)
			for (d = 0; d < n; d++)
				rows[d].data = dest[d];

		fs_cache_lookup(view, b, &fill, plan, buf, rows);
		for (d = 0; d < n; d++)
			if (rows[d].kind == FS_CACHED_MISS)
				which[nmiss++] = d;
		hits = fill.hits;
		if (nmiss > 0)
		{
			Snapshot	snap;

			fetched = palloc0(sizeof(HeapTuple) * n);
			fs_keys_sort_subset(b, which, nmiss);	/* index order */
			snap = fs_cache_fill_snapshot();
			fs_online_fetch(view, rel, b, which, nmiss, fetched, snap);
			fs_cache_fill(&fill, b, which, nmiss, fetched, RelationGetDescr(rel));
			UnregisterSnapshot(snap);
		}
	}
	else
	{
		for (d = 0; d < n; d++)
			which[d] = d;
		nmiss = n;
		fetched = palloc0(sizeof(HeapTuple) * Max(n, 1));
		fs_keys_sort_subset(b, which, n);
		fs_online_fetch(view, rel, b, which, n, fetched, GetActiveSnapshot());
	}
	for (i = 0; i < nmiss; i++)
	{
		HeapTuple	t = fetched[which[i]];

		d = which[i];
		if (t == NULL)
			rows[d].kind = FS_CACHED_ABSENT;
		else
		{
			rows[d].kind = FS_CACHED_TUPLE;
			rows[d].len = t->t_len;
			rows[d].data = (char *) t->t_data;
		}
	}
	expire_rows(view, RelationGetDescr(rel), b, rows);
	fs_stats_count_lookup(view->view_id, b->ninput, hits, nmiss);
	*descp = RelationGetDescr(rel);
	table_close(rel, NoLock);
	return rows;
}

/*
 * read_view_rows for service.c: the same path, cache included, as heap
 * tuples (NULL: no row, or expired).  The rows live in memory of the
 * current context.
 */
HeapTuple *
fs_online_read_rows(FsView *view, FsKeyBatch *b, TupleDesc *descp)
{
	FsRowBuf   *buf = palloc0(sizeof(FsRowBuf));
	FsCachedRow *rows;
	HeapTuple  *tuples = palloc0(sizeof(HeapTuple) * Max(b->ndistinct, 1));
	int			d;

	buf->cxt = CurrentMemoryContext;
	rows = read_view_rows(view, b, NULL, NULL, buf, descp);
	for (d = 0; d < b->ndistinct; d++)
		if (rows[d].kind == FS_CACHED_TUPLE)
			tuples[d] = row_tuple(&rows[d], palloc(sizeof(HeapTupleData)),
								  view->online_relid);
	return tuples;
}

/* Fills a row's key columns (at the given attribute positions) from input i. */
static void
set_keys(FsKeyBatch *b, int i, int nkeys, const AttrNumber *attnums,
		 Datum *values, bool *nulls)
{
	int			k;

	for (k = 0; k < nkeys; k++)
	{
		values[attnums[k] - 1] = b->in_vals[i * b->nkeycols + k];
		nulls[attnums[k] - 1] = b->in_nulls[i * b->nkeycols + k];
	}
}

/* Emits the rows of a feature view target. */
static void
emit_view(ReturnSetInfo *rsinfo, FsView *view, FsKeyBatch *b, FsCachedRow *rows)
{
	TupleDesc	outdesc = rsinfo->setDesc;
	Datum	   *values = palloc(sizeof(Datum) * outdesc->natts);
	bool	   *nulls = palloc(sizeof(bool) * outdesc->natts);
	AttrNumber	keyatt[FS_MAX_KEYS];
	HeapTupleData tmp;
	int			i;
	int			k;

	if (outdesc->natts != view->online_natts)
		elog(ERROR, "row type of feature view \"%s\" does not match its table",
			 view->name);
	for (k = 0; k < view->nkeys; k++)
		keyatt[k] = view->cols[k].online_attnum;

	for (i = 0; i < b->ninput; i++)
	{
		int			d = b->in_distinct[i];

		if (d >= 0 && rows[d].kind == FS_CACHED_TUPLE)
		{
			tuplestore_puttuple(rsinfo->setResult,
								row_tuple(&rows[d], &tmp, view->online_relid));
			continue;
		}
		memset(nulls, true, sizeof(bool) * outdesc->natts);
		if (!b->in_isnull[i])
			set_keys(b, i, view->nkeys, keyatt, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, outdesc, values, nulls);
	}
}

/* What both entry points share: the target, its locks and the key batch. */
typedef struct LookupCall
{
	FsView	   *view;			/* a view target, or */
	FsService  *svc;			/* a service target */
	FsView	   *first;			/* the view whose key layout is used */
	bool		have_keys;		/* false: the key array was NULL */
	FsKeyBatch	batch;
	MemoryContext cxt;
	FsRowBuf   *buf;			/* where cached rows are copied */
} LookupCall;

static const char *
target_kind(LookupCall *c)
{
	return c->view ? "feature view" : "feature service";
}

static const char *
target_name(LookupCall *c)
{
	return c->view ? c->view->name : c->svc->name;
}

/* Locks the online tables of the target; metadata is refreshed after. */
static void
lock_target(FsView *view, FsService *svc)
{
	int			v;

	if (view)
		LockRelationOid(view->online_relid, AccessShareLock);
	else
		for (v = 0; v < svc->nviews; v++)
			LockRelationOid(svc->views[v]->online_relid, AccessShareLock);
}

/*
 * A typed answer of 1,000 rows passes through the executor's tuplestore
 * (a FunctionScan always materializes), about half a megabyte that the
 * query's memory context takes from malloc and gives back at its end.
 * glibc returns such memory to the kernel (trimming the heap, unmapping
 * large blocks), so every query faulted it in afresh: a tenth of a typed
 * request's CPU, and a source of its tail latency.  A backend that serves
 * reads therefore keeps up to 32 MB of freed heap for reuse (larger blocks
 * still come from mmap and go back at once).
 */
static void
keep_freed_memory(void)
{
#ifdef __GLIBC__
	static bool done = false;

	if (done)
		return;
	done = true;
	(void) mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	(void) mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
#endif
}

static void
lookup_begin(FunctionCallInfo fcinfo, LookupCall *c)
{
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	Oid			keystype = get_fn_expr_argtype(fcinfo->flinfo, 1);
	ArrayType  *keys;
	int			nkeys;
	int			v;

	/*
	 * Taking the table locks processes pending invalidations, so resolving
	 * the target again afterwards sees the tables as they are now.
	 */
	fs_catalog_target(rowtype, &c->view, &c->svc);
	lock_target(c->view, c->svc);
	fs_catalog_target(rowtype, &c->view, &c->svc);
	lock_target(c->view, c->svc);
	if (c->view == NULL)		/* services are read by service.c */
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view of type %s was replaced by a feature service",
						format_type_be(rowtype)),
				 errhint("Run the statement again.")));
	c->first = c->view;

	if (keystype != c->first->key_array_type)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("keys have type %s, but %s \"%s\" expects %s",
						OidIsValid(keystype) ? format_type_be(keystype) : "unknown",
						target_kind(c), target_name(c),
						format_type_be(c->first->key_array_type)),
				 errhint("Cast the key array, for example ARRAY[...]::%s.",
						 format_type_be(c->first->key_array_type))));

	/* privileges are checked before anything is read, cache included */
	if (c->view)
		fs_check_select(c->view->online_relid);
	else
		for (v = 0; v < c->svc->nviews; v++)
			fs_check_select(c->svc->views[v]->online_relid);

	c->have_keys = !PG_ARGISNULL(1);
	if (!c->have_keys)
		return;
	keys = PG_GETARG_ARRAYTYPE_P(1);
	nkeys = ArrayGetNItems(ARR_NDIM(keys), ARR_DIMS(keys));
	if (nkeys > fs_max_keys_per_call)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many keys in one call: %d, the limit is %d",
						nkeys, fs_max_keys_per_call),
				 errhint("Split the keys over several calls, or raise fstore.max_keys_per_call.")));

	keep_freed_memory();
	c->cxt = AllocSetContextCreate(CurrentMemoryContext, "fstore lookup",
								   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(c->cxt);
	if (!read_buf_busy)
	{
		MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

		if (read_buf.cxt == NULL)
		{
			read_buf.cxt = AllocSetContextCreate(TopMemoryContext,
												 "fstore read buffers",
												 ALLOCSET_SMALL_SIZES);
			read_buf.max_keep = 16 * 1024 * 1024;
		}
		fs_rowbuf_reset(&read_buf);
		read_buf_busy = true;
		cb->func = read_buf_release;
		cb->arg = NULL;
		MemoryContextRegisterResetCallback(c->cxt, cb);
		c->buf = &read_buf;
	}
	else
	{
		c->buf = palloc0(sizeof(FsRowBuf));
		c->buf->cxt = c->cxt;
	}
	/* with the cache, most keys never reach the index: no need to sort */
	fs_keys_from_array(&c->batch, c->first, keys,
					   !(fs_cache_active() && fs_cache_enabled));
}

/* Services are read by service.c. */
static bool
target_is_service(FunctionCallInfo fcinfo)
{
	FsView	   *view;
	FsService  *svc;

	fs_catalog_target(get_fn_expr_argtype(fcinfo->flinfo, 0), &view, &svc);
	return svc != NULL;
}

/*
 * The start of fs_get_many and fs_get_many_packed: false, with *answer
 * set, when another part answers (an aggregation view, a feature service);
 * else true with c begun (lookup_begin).
 */
static bool
get_many_begin(FunctionCallInfo fcinfo, bool packed, LookupCall *c, Datum *answer)
{
	if (fs_agg_is_rowtype(get_fn_expr_argtype(fcinfo->flinfo, 0)))
	{
		*answer = fs_agg_get_many(fcinfo, packed);	/* aggregation view */
		return false;
	}
	if (target_is_service(fcinfo))
	{
		*answer = packed ? fs_service_get_many_packed(fcinfo) :
			fs_service_get_many(fcinfo);
		return false;
	}
	memset(c, 0, sizeof(*c));
	lookup_begin(fcinfo, c);
	return true;
}

/*
 * fs_get_many(row_type anyelement, keys "any") RETURNS SETOF anyelement
 */
Datum
fs_get_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old = CurrentMemoryContext;
	LookupCall	c;
	Datum		answer;

	if (!get_many_begin(fcinfo, false, &c, &answer))
		return answer;
	InitMaterializedSRF(fcinfo, 0);
	if (!c.have_keys)
		return (Datum) 0;

	{
		TupleDesc	desc;
		FsCachedRow *rows = read_view_rows(c.view, &c.batch, NULL, NULL, c.buf, &desc);

		emit_view(rsinfo, c.view, &c.batch, rows);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(c.cxt);
	return (Datum) 0;
}

/*
 * fs_get_many_packed(row_type anyelement, keys "any") RETURNS bytea: the
 * same answer in the compact layout of packed.h.
 */
Datum
fs_get_many_packed(PG_FUNCTION_ARGS)
{
	MemoryContext old = CurrentMemoryContext;
	LookupCall	c;
	FsPacker	pk;
	bytea	   *result;
	int			i;
	Datum		answer;

	if (!get_many_begin(fcinfo, true, &c, &answer))
		return answer;
	if (!c.have_keys)
		PG_RETURN_NULL();

	{
		FsView	   *view = c.view;
		Relation	rel;
		TupleDesc	desc;
		FsCachedRow *rows;
		FsPackPlan	plan;
		int			natts = view->online_natts;
		Datum	   *vals = palloc(sizeof(Datum) * natts);
		bool	   *nulls = palloc(sizeof(bool) * natts);
		int			nf = view->nfeatures;
		const char **names = palloc(sizeof(char *) * nf);
		Oid		   *types = palloc(sizeof(Oid) * nf);
		int		   *attoff = palloc(sizeof(int) * nf);
		AttrNumber *attnums = palloc(sizeof(AttrNumber) * Max(nf, 1));
		Size		room = 0;
		HeapTupleData tmp;

		for (i = 0; i < nf; i++)
		{
			FsColumn   *col = &view->cols[view->nkeys + i];

			names[i] = col->name;
			types[i] = col->typid;
			attoff[i] = col->online_attnum - 1;
			attnums[i] = col->online_attnum;
		}
		/* refuses unpackable types before anything is read */
		fs_packer_begin(&pk, old, c.batch.ninput, nf, names, types);
		rel = table_open(view->online_relid, AccessShareLock);
		fs_pack_plan(&plan, RelationGetDescr(rel),
					 view->cols[view->ts_col].online_attnum, nf, attnums, types);
		table_close(rel, NoLock);
		if (plan.usable)
		{
			/*
			 * Every record takes at most plan.reclen bytes: give input i the
			 * room at hdr + i * reclen of the answer and have the cache
			 * lookup write each distinct key's record straight into the room
			 * of its first occurrence; then close the gaps left by absent
			 * keys in one forward pass, which only moves records down (the
			 * answer of a request whose keys are all found and distinct
			 * needs no move at all).
			 */
			int			n = c.batch.ndistinct;
			uint32		reclen = plan.reclen;
			Size		hdr;
			Size		w;
			Size	   *pos = palloc(sizeof(Size) * Max(n, 1));
			char	  **dest = palloc(sizeof(char *) * Max(n, 1));

			fs_packer_reserve(&pk, (Size) c.batch.ninput * reclen);
			hdr = pk.buf.len;
			for (i = 0; i < n; i++)
			{
				dest[i] = NULL;
				pos[i] = 0;
			}
			for (i = c.batch.ninput - 1; i >= 0; i--)
			{
				int			d = c.batch.in_distinct[i];

				if (d >= 0)
					dest[d] = pk.buf.data + hdr + (Size) i * reclen;
			}
			rows = read_view_rows(view, &c.batch, &plan, dest, c.buf, &desc);

			w = hdr;
			for (i = 0; i < c.batch.ninput; i++)
			{
				int			d = c.batch.in_distinct[i];
				char	   *slot = pk.buf.data + hdr + (Size) i * reclen;

				if (d < 0 || rows[d].kind == FS_CACHED_ABSENT)
				{
					pk.buf.data[w++] = '\0';
					continue;
				}
				if (pos[d] != 0)
				{
					/* a repeated key: its record is already in place, below */
					memcpy(pk.buf.data + w, pk.buf.data + pos[d], rows[d].len);
					w += rows[d].len;
					continue;
				}
				pos[d] = w;
				if (rows[d].kind == FS_CACHED_PACKED)
				{
					if (rows[d].data == slot)
					{
						if (w != hdr + (Size) i * reclen)
							memmove(pk.buf.data + w, slot, rows[d].len);
					}
					else
						memcpy(pk.buf.data + w, rows[d].data, rows[d].len);
					w += rows[d].len;
				}
				else if (fs_pack_from_tuple(&plan, (HeapTupleHeader) rows[d].data,
											pk.buf.data + w))
				{
					/* a row read from the table, without NULLs */
					rows[d].len = reclen;
					w += reclen;
				}
				else
				{
					pk.buf.len = w;
					heap_deform_tuple(row_tuple(&rows[d], &tmp, view->online_relid),
									  desc, vals, nulls);
					fs_packer_row(&pk, DatumGetTimestampTz(vals[view->cols[view->ts_col].online_attnum - 1]),
								  vals, nulls, attoff);
					rows[d].len = pk.buf.len - w;
					w = pk.buf.len;
				}
			}
			pk.buf.len = w;
			pk.buf.data[w] = '\0';
		}
		else
		{
			rows = read_view_rows(view, &c.batch, &plan, NULL, c.buf, &desc);
			/* the answer's size when every row is a packed record: one allocation */
			for (i = 0; i < c.batch.ninput; i++)
			{
				int			d = c.batch.in_distinct[i];

				room += (d >= 0 && rows[d].kind == FS_CACHED_PACKED) ? rows[d].len : 1;
			}
			fs_packer_reserve(&pk, room);
			for (i = 0; i < c.batch.ninput; i++)
			{
				int			d = c.batch.in_distinct[i];

				if (d < 0 || rows[d].kind == FS_CACHED_ABSENT)
					fs_packer_absent(&pk);
				else if (rows[d].kind == FS_CACHED_PACKED)
					fs_packer_copy(&pk, rows[d].data, rows[d].len);
				else
				{
					heap_deform_tuple(row_tuple(&rows[d], &tmp, view->online_relid),
									  desc, vals, nulls);
					fs_packer_row(&pk, DatumGetTimestampTz(vals[view->cols[view->ts_col].online_attnum - 1]),
								  vals, nulls, attoff);
				}
			}
		}
	}
	MemoryContextSwitchTo(old);
	result = fs_packer_finish(&pk);
	MemoryContextDelete(c.cxt);
	PG_RETURN_BYTEA_P(result);
}
