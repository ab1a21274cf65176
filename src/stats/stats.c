/*
 * stats.c
 *		Per-view counters in shared memory: fstore.stats.
 *
 * The counters live in a per-view table in shared memory
 * (util/viewtable.c: keyed by database and view_id, one LWLock, the entry
 * used least recently given to a new view when full); they are atomics,
 * updated and reset under the shared lock.  A view that loses its entry
 * starts counting from zero again.  The hot cache's per-view state
 * (generation, busy) is a table of its own, in cache/generation.c.
 *
 * Without shared_preload_libraries nothing is kept and fstore.stats shows
 * NULLs.
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "stats/stats.h"
#include "util/util.h"
#include "util/viewtable.h"

PG_FUNCTION_INFO_V1(fs_stats);
PG_FUNCTION_INFO_V1(fs_reset_stats);

typedef struct FsStatsEntry
{
	FsViewEntry hdr;			/* key and last use (util/viewtable.h) */
	pg_atomic_uint64 c[FS_STAT_NCOUNTERS];
} FsStatsEntry;

static void
init_counters(FsViewEntry *e)
{
	int			i;

	for (i = 0; i < FS_STAT_NCOUNTERS; i++)
		pg_atomic_init_u64(&((FsStatsEntry *) e)->c[i], 0);
}

static FsViewTable stats = {
	.name = "fstore stats hash",
	.tranche = "fstore_stats",
	.entrysize = sizeof(FsStatsEntry),
	.init_entry = init_counters,
	.may_evict = NULL,
	.full_detail = "It holds fstore.max_feature_views = %d views across all databases; the views beyond that are not counted.",
};

Size
fs_stats_shmem_size(void)
{
	return fs_viewtable_shmem_size(&stats);
}

void
fs_stats_shmem_startup(void)
{
	fs_viewtable_shmem_startup(&stats);
}

void
fs_stats_add(int64 view_id, const int64 *deltas)
{
	FsStatsEntry *e;
	int			i;

	if (!fs_preloaded())
		return;
	e = (FsStatsEntry *) fs_viewtable_enter(&stats, MyDatabaseId, view_id);
	if (e == NULL)
		return;
	for (i = 0; i < FS_STAT_NCOUNTERS; i++)
		if (deltas[i] != 0)
			pg_atomic_fetch_add_u64(&e->c[i], deltas[i]);
	LWLockRelease(stats.lock);
}

void
fs_stats_count_lookup(int64 view_id, int64 keys, int64 hits, int64 misses)
{
	int64		d[FS_STAT_NCOUNTERS] = {0};

	d[FS_STAT_LOOKUPS] = 1;
	d[FS_STAT_KEYS_REQUESTED] = keys;
	d[FS_STAT_CACHE_HITS] = hits;
	d[FS_STAT_CACHE_MISSES] = misses;
	fs_stats_add(view_id, d);
}

void
fs_stats_count_writes(int64 view_id, int64 written, int64 unchanged, int64 late)
{
	int64		d[FS_STAT_NCOUNTERS] = {0};

	d[FS_STAT_ROWS_WRITTEN] = written;
	d[FS_STAT_ROWS_UNCHANGED] = unchanged;
	d[FS_STAT_ROWS_LATE] = late;
	fs_stats_add(view_id, d);
}

void
fs_stats_forget(int64 view_id)
{
	if (!fs_preloaded())
		return;
	fs_viewtable_remove(&stats, MyDatabaseId, view_id);
}

/* fstore._stats(): one row per view of this database that has counters. */
Datum
fs_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	FsStatsEntry *e;

	InitMaterializedSRF(fcinfo, 0);
	if (!fs_preloaded())
		return (Datum) 0;

	LWLockAcquire(stats.lock, LW_SHARED);
	hash_seq_init(&seq, stats.hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[FS_STAT_NCOUNTERS + 1];
		bool		nulls[FS_STAT_NCOUNTERS + 1] = {false};
		int			i;

		if (e->hdr.key.dbid != MyDatabaseId)
			continue;
		values[0] = Int64GetDatum(e->hdr.key.view_id);
		for (i = 0; i < FS_STAT_NCOUNTERS; i++)
			values[i + 1] = Int64GetDatum(pg_atomic_read_u64(&e->c[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(stats.lock);
	return (Datum) 0;
}

/* fs_reset_stats(): zeroes the counters of this database's views. */
Datum
fs_reset_stats(PG_FUNCTION_ARGS)
{
	HASH_SEQ_STATUS seq;
	FsStatsEntry *e;
	int			i;

	if (!fs_preloaded())
	{
		ereport(NOTICE,
				(errmsg("fstore statistics are not collected"),
				 errdetail("fstore is not in shared_preload_libraries.")));
		PG_RETURN_VOID();
	}
	LWLockAcquire(stats.lock, LW_SHARED);
	hash_seq_init(&seq, stats.hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->hdr.key.dbid == MyDatabaseId)
			for (i = 0; i < FS_STAT_NCOUNTERS; i++)
				pg_atomic_write_u64(&e->c[i], 0);
	LWLockRelease(stats.lock);
	PG_RETURN_VOID();
}
