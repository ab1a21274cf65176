/*
 * stats.c
 *		Per-view state in shared memory: the counters of fstore.stats and
 *		the hot cache's view generation.
 *
 * One shared hash, keyed by (database, view_id), holds an entry per view
 * that has been used since startup.  The hash is protected by one LWLock:
 * shared to find an entry and update its atomics, exclusive to create,
 * reset or remove entries.  It is fixed-size (fstore.max_feature_views
 * entries for all databases together).  When it is full, the entry used
 * least recently is given to the new view (entries of dropped databases and
 * views go that way); only if every entry is in the middle of an
 * invalidation is the new view neither counted nor cached (a WARNING says
 * so once per backend).  Losing an entry is safe: a view whose entry comes
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

#include "fstore.h"
#include "stats/stats.h"

PG_FUNCTION_INFO_V1(fs_stats);
PG_FUNCTION_INFO_V1(fs_reset_stats);

/* hashed as bytes, so laid out without padding */
typedef struct FsStatsKey
{
	int64		view_id;
	Oid			dbid;
	uint32		zero;			/* always 0 */
} FsStatsKey;

typedef struct FsStatsEntry
{
	FsStatsKey	key;			/* hash key */
	pg_atomic_uint64 generation;
	pg_atomic_uint32 busy;
	pg_atomic_uint64 last_used;	/* TimestampTz, for reuse when full */
	pg_atomic_uint64 c[FS_STAT_NCOUNTERS];
} FsStatsEntry;

typedef struct FsStatsShared
{
	LWLock	   *lock;
	pg_atomic_uint64 next_generation;
} FsStatsShared;

static FsStatsShared *stats_shared = NULL;
static HTAB *stats_hash = NULL;
static bool warned_full = false;

Size
fs_stats_shmem_size(void)
{
	return add_size(MAXALIGN(sizeof(FsStatsShared)),
					hash_estimate_size(fs_max_feature_views, sizeof(FsStatsEntry)));
}

void
fs_stats_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	stats_shared = ShmemInitStruct("fstore stats", sizeof(FsStatsShared), &found);
	if (!found)
	{
		stats_shared->lock = &(GetNamedLWLockTranche("fstore_stats"))->lock;
		pg_atomic_init_u64(&stats_shared->next_generation, 1);
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(FsStatsKey);
	info.entrysize = sizeof(FsStatsEntry);
	stats_hash = ShmemInitHash("fstore stats hash",
							   fs_max_feature_views, fs_max_feature_views,
							   &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

static inline FsStatsKey
stats_key_db(Oid dbid, int64 view_id)
{
	FsStatsKey	key;

	key.view_id = view_id;
	key.dbid = dbid;
	key.zero = 0;
	return key;
}

static inline FsStatsKey
stats_key(int64 view_id)
{
	return stats_key_db(MyDatabaseId, view_id);
}

static inline uint64
new_generation(void)
{
	return pg_atomic_fetch_add_u64(&stats_shared->next_generation, 1);
}

/*
 * Removes the least recently used entry that no writer is invalidating;
 * the caller holds the lock exclusively.  False if there is none.
 */
static bool
evict_least_used(void)
{
	HASH_SEQ_STATUS seq;
	FsStatsEntry *e;
	FsStatsKey	victim;
	uint64		oldest = PG_UINT64_MAX;

	hash_seq_init(&seq, stats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		uint64		used = pg_atomic_read_u64(&e->last_used);

		if (pg_atomic_read_u32(&e->busy) == 0 && used < oldest)
		{
			oldest = used;
			victim = e->key;
		}
	}
	if (oldest == PG_UINT64_MAX)
		return false;
	hash_search(stats_hash, &victim, HASH_REMOVE, NULL);
	return true;
}

/*
 * Finds (or creates) the entry of a view and returns it with the lock held
 * in shared mode; NULL, with no lock held, when the table is full.
 */
static FsStatsEntry *
entry_locked_db(Oid dbid, int64 view_id)
{
	FsStatsKey	key = stats_key_db(dbid, view_id);
	FsStatsEntry *e;
	bool		found;
	int			i;

	LWLockAcquire(stats_shared->lock, LW_SHARED);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		pg_atomic_write_u64(&e->last_used, (uint64) GetCurrentTimestamp());
		return e;
	}
	LWLockRelease(stats_shared->lock);

	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	e = hash_search(stats_hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL && evict_least_used())
		e = hash_search(stats_hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		LWLockRelease(stats_shared->lock);
		if (!warned_full)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("fstore view table is full"),
					 errdetail("It holds fstore.max_feature_views = %d views across all databases; the views beyond that are neither counted nor cached.",
							   fs_max_feature_views),
					 errhint("Raise fstore.max_feature_views (needs a restart).")));
		warned_full = true;
		return NULL;
	}
	if (!found)
	{
		pg_atomic_init_u64(&e->generation, new_generation());
		pg_atomic_init_u32(&e->busy, 0);
		pg_atomic_init_u64(&e->last_used, (uint64) GetCurrentTimestamp());
		for (i = 0; i < FS_STAT_NCOUNTERS; i++)
			pg_atomic_init_u64(&e->c[i], 0);
	}
	/* keep the promise of a shared lock: it is enough for atomics */
	LWLockRelease(stats_shared->lock);
	LWLockAcquire(stats_shared->lock, LW_SHARED);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (e == NULL)
		LWLockRelease(stats_shared->lock);	/* removed meanwhile */
	return e;
}

static inline FsStatsEntry *
entry_locked(int64 view_id)
{
	return entry_locked_db(MyDatabaseId, view_id);
}

void
fs_stats_add(int64 view_id, const int64 *deltas)
{
	FsStatsEntry *e;
	int			i;

	if (!fs_preloaded())
		return;
	e = entry_locked(view_id);
	if (e == NULL)
		return;
	for (i = 0; i < FS_STAT_NCOUNTERS; i++)
		if (deltas[i] != 0)
			pg_atomic_fetch_add_u64(&e->c[i], deltas[i]);
	LWLockRelease(stats_shared->lock);
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
	FsStatsKey	key = stats_key(view_id);

	if (!fs_preloaded())
		return;
	LWLockAcquire(stats_shared->lock, LW_EXCLUSIVE);
	{
		FsStatsEntry *e = hash_search(stats_hash, &key, HASH_FIND, NULL);

		/*
		 * An entry a writer is invalidating stays: removing it would let a
		 * reader recreate it, not busy, while the writer's change is not
		 * yet committed.  It is reclaimed like any unused entry later.
		 */
		if (e != NULL && pg_atomic_read_u32(&e->busy) == 0)
			hash_search(stats_hash, &key, HASH_REMOVE, NULL);
	}
	LWLockRelease(stats_shared->lock);
}

bool
fs_view_state(int64 view_id, uint64 *generation, bool *busy)
{
	FsStatsEntry *e;

	if (!fs_preloaded())
		return false;
	e = entry_locked(view_id);
	if (e == NULL)
		return false;
	*busy = pg_atomic_read_u32(&e->busy) != 0;
	*generation = pg_atomic_read_u64(&e->generation);
	LWLockRelease(stats_shared->lock);
	return true;
}

bool
fs_view_state_begin_invalidate(int64 view_id)
{
	return fs_view_state_begin_invalidate_db(MyDatabaseId, view_id);
}

/* The same for a view of any database (a standby's redo: wal.c). */
bool
fs_view_state_begin_invalidate_db(Oid dbid, int64 view_id)
{
	FsStatsEntry *e;

	if (!fs_preloaded())
		return false;
	e = entry_locked_db(dbid, view_id);
	if (e == NULL)
		return false;
	pg_atomic_fetch_add_u32(&e->busy, 1);
	pg_atomic_write_u64(&e->generation, new_generation());
	LWLockRelease(stats_shared->lock);
	return true;
}

void
fs_view_state_end_invalidate(int64 view_id)
{
	fs_view_state_end_invalidate_db(MyDatabaseId, view_id);
}

void
fs_view_state_end_invalidate_db(Oid dbid, int64 view_id)
{
	FsStatsKey	key = stats_key_db(dbid, view_id);
	FsStatsEntry *e;

	LWLockAcquire(stats_shared->lock, LW_SHARED);
	e = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		uint32		busy = pg_atomic_read_u32(&e->busy);

		pg_atomic_write_u64(&e->generation, new_generation());
		/* never below zero, even for an entry that was created anew */
		while (busy > 0 && !pg_atomic_compare_exchange_u32(&e->busy, &busy, busy - 1))
			;
	}
	LWLockRelease(stats_shared->lock);
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

	LWLockAcquire(stats_shared->lock, LW_SHARED);
	hash_seq_init(&seq, stats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[FS_STAT_NCOUNTERS + 1];
		bool		nulls[FS_STAT_NCOUNTERS + 1] = {false};
		int			i;

		if (e->key.dbid != MyDatabaseId)
			continue;
		values[0] = Int64GetDatum(e->key.view_id);
		for (i = 0; i < FS_STAT_NCOUNTERS; i++)
			values[i + 1] = Int64GetDatum(pg_atomic_read_u64(&e->c[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(stats_shared->lock);
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
	LWLockAcquire(stats_shared->lock, LW_SHARED);
	hash_seq_init(&seq, stats_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->key.dbid == MyDatabaseId)
			for (i = 0; i < FS_STAT_NCOUNTERS; i++)
				pg_atomic_write_u64(&e->c[i], 0);
	LWLockRelease(stats_shared->lock);
	PG_RETURN_VOID();
}
