/*
 * generation.c
 *		The hot cache's per-view state in shared memory: each view's
 *		generation and busy count, and the SQL functions that create,
 *		forget and invalidate it when a view is created, dropped or
 *		changed.
 *
 * The state lives in a per-view table in shared memory (util/viewtable.c:
 * keyed by database and view_id, one LWLock, atomics updated under its
 * shared lock).  When it is full, the entry used least recently and not in
 * the middle of an invalidation is given to the new view; only if every
 * entry is being invalidated is the new view not cached (a WARNING says so
 * once per backend).  Losing an entry is safe: a view whose entry comes
 * back gets a new generation, so none of its old cache entries is served.
 *
 * Generation: every cache entry records its view's generation when it was
 * filled and is served only while that is still the view's generation.
 * Invalidating a whole view sets a new generation.  Generations are drawn
 * from one server-wide counter, so a value is never issued twice: an entry
 * can never become valid again, even if its view's state is removed and
 * created anew (a dropped view whose drop rolled back).  "busy" counts
 * writers between pre-commit and commit of a whole-view invalidation;
 * while it is non-zero nobody installs entries of the view.
 *
 * Without shared_preload_libraries nothing is kept (and nothing cached).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "cache/cache.h"
#include "cache/generation.h"
#include "catalog/metadata.h"
#include "stats/freshness.h"
#include "stats/stats.h"
#include "util/util.h"
#include "util/viewtable.h"

PG_FUNCTION_INFO_V1(fs_forget_view);
PG_FUNCTION_INFO_V1(fs_init_view);
PG_FUNCTION_INFO_V1(fs_view_changed);

typedef struct ViewGenEntry
{
	FsViewEntry hdr;			/* key and last use (util/viewtable.h) */
	pg_atomic_uint64 generation;
	pg_atomic_uint32 busy;
} ViewGenEntry;

typedef struct ViewGenShared
{
	pg_atomic_uint64 next_generation;
} ViewGenShared;

static ViewGenShared *gen_shared = NULL;

static inline uint64
new_generation(void)
{
	return pg_atomic_fetch_add_u64(&gen_shared->next_generation, 1);
}

static void
init_generation(FsViewEntry *e)
{
	pg_atomic_init_u64(&((ViewGenEntry *) e)->generation, new_generation());
	pg_atomic_init_u32(&((ViewGenEntry *) e)->busy, 0);
}

/*
 * An entry a writer is invalidating stays: removing it would let a reader
 * recreate it, not busy, while the writer's change is not yet committed.
 */
static bool
not_busy(FsViewEntry *e)
{
	return pg_atomic_read_u32(&((ViewGenEntry *) e)->busy) == 0;
}

static FsViewTable gens = {
	.name = "fstore view generations hash",
	.tranche = "fstore_viewgen",
	.entrysize = sizeof(ViewGenEntry),
	.init_entry = init_generation,
	.may_evict = not_busy,
	.full_detail = "It holds fstore.max_feature_views = %d views across all databases; the views beyond that are not cached.",
};

Size
fs_viewgen_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(ViewGenShared)), fs_viewtable_shmem_size(&gens));
}

void
fs_viewgen_shmem_startup(void)
{
	bool		found;

	gen_shared = ShmemInitStruct("fstore view generations", sizeof(ViewGenShared), &found);
	if (!found)
		pg_atomic_init_u64(&gen_shared->next_generation, 1);
	fs_viewtable_shmem_startup(&gens);
}

bool
fs_viewgen_get(int64 view_id, uint64 *generation, bool *busy)
{
	ViewGenEntry *e;

	if (!fs_preloaded())
		return false;
	e = (ViewGenEntry *) fs_viewtable_enter(&gens, MyDatabaseId, view_id);
	if (e == NULL)
		return false;
	*busy = pg_atomic_read_u32(&e->busy) != 0;
	*generation = pg_atomic_read_u64(&e->generation);
	LWLockRelease(gens.lock);
	return true;
}

bool
fs_viewgen_begin_invalidate(int64 view_id)
{
	return fs_viewgen_begin_invalidate_db(MyDatabaseId, view_id);
}

bool
fs_viewgen_begin_invalidate_db(Oid dbid, int64 view_id)
{
	ViewGenEntry *e;

	if (!fs_preloaded())
		return false;
	e = (ViewGenEntry *) fs_viewtable_enter(&gens, dbid, view_id);
	if (e == NULL)
		return false;
	pg_atomic_fetch_add_u32(&e->busy, 1);
	pg_atomic_write_u64(&e->generation, new_generation());
	LWLockRelease(gens.lock);
	return true;
}

void
fs_viewgen_end_invalidate(int64 view_id)
{
	fs_viewgen_end_invalidate_db(MyDatabaseId, view_id);
}

void
fs_viewgen_end_invalidate_db(Oid dbid, int64 view_id)
{
	FsViewKey	key = fs_viewtable_key(dbid, view_id);
	ViewGenEntry *e;

	LWLockAcquire(gens.lock, LW_SHARED);
	e = hash_search(gens.hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		uint32		busy = pg_atomic_read_u32(&e->busy);

		pg_atomic_write_u64(&e->generation, new_generation());
		/* never below zero, even for an entry that was created anew */
		while (busy > 0 && !pg_atomic_compare_exchange_u32(&e->busy, &busy, busy - 1))
			;
	}
	LWLockRelease(gens.lock);
}

void
fs_viewgen_forget(int64 view_id)
{
	if (!fs_preloaded())
		return;
	fs_viewtable_remove(&gens, MyDatabaseId, view_id);
}

/*
 * The row of view_id in fstore.feature_views, as this transaction sees it:
 * *exists, and whether this transaction inserted it.
 */
static void
view_row(int64 view_id, bool *exists, bool *ours)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(view_id)};

	*exists = *ours = false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT xmin FROM fstore.feature_views WHERE view_id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fstore.feature_views");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		xmin = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		*exists = true;
		*ours = !isnull && TransactionIdIsCurrentTransactionId(DatumGetTransactionId(xmin));
	}
	SPI_finish();
}

/*
 * Clears the shared state of view_id (its counters and its generation)
 * once its row in fstore.feature_views, as this transaction sees it, is
 * right for the caller: gone for _forget_view, inserted by this
 * transaction for _init_view (created).
 */
static void
reset_view(int64 view_id, bool created)
{
	bool		exists;
	bool		ours;

	view_row(view_id, &exists, &ours);
	if (!created && exists)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("feature view %lld still exists", (long long) view_id),
				 errhint("fstore._forget_view is called by fs_drop_feature_view.")));
	if (created && (!exists || !ours))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view %lld was not created by this transaction", (long long) view_id),
				 errhint("fstore._init_view is called by fs_create_feature_view.")));
	fs_stats_forget(view_id);
	fs_freshness_forget(view_id);
	fs_viewgen_forget(view_id);
}

/*
 * fstore._forget_view(view_id): releases what shared memory holds for a
 * dropped view (called by fs_drop_feature_view, once the view's row is
 * gone).  Entries are keyed by view_id, which is never reused, so this
 * only reclaims memory; it is safe even if the drop rolls back.  Refused
 * for a view that still exists.
 */
Datum
fs_forget_view(PG_FUNCTION_ARGS)
{
	reset_view(PG_GETARG_INT64(0), false);
	PG_RETURN_VOID();
}

/*
 * fstore._init_view(view_id): clears any shared state left under a view id
 * (after DROP EXTENSION and CREATE EXTENSION, ids start again); the view
 * then starts with a generation no cache entry has.  Only for a view this
 * transaction created (fs_create_feature_view calls it).
 */
Datum
fs_init_view(PG_FUNCTION_ARGS)
{
	reset_view(PG_GETARG_INT64(0), true);
	PG_RETURN_VOID();
}

/*
 * fstore._view_changed(name): called by fs_alter_feature_view once it has
 * changed a view.  Takes the view's writer lock (so no fs_write or stream
 * batch is between reading and writing it) and tells the hot cache, at
 * commit, to drop every entry of the view (a new generation).  Other
 * backends and the stream workers reload the view's metadata by
 * themselves: the catalogs' statement triggers and the ALTER TABLEs
 * invalidate it.  Only for the view's owner.
 */
Datum
fs_view_changed(PG_FUNCTION_ARGS)
{
	FsView	   *view = fs_catalog_view(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (!has_privs_of_role(GetUserId(), view->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of feature view \"%s\"", view->name)));
	fs_catalog_lock_view_writers(view);
	fs_cache_note_view(view);
	PG_RETURN_VOID();
}

