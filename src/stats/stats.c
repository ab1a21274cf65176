/*
 * stats.c
 *		Per-view counters in shared memory: fstore.stats.
 *
 * One shared hash, keyed by (database, view_id), holds an entry per view
 * that has been used since startup.  The hash is protected by one LWLock:
 * shared to find an entry and update its atomics, exclusive to create,
 * reset or remove entries.  It is fixed-size (fstore.max_feature_views
 * entries for all databases together).  When it is full, the entry used
 * least recently is given to the new view (entries of dropped databases and
 * views go that way): its counters start again from zero.  The hot cache's
 * per-view state (generation, busy) is a table of its own, in
 * cache/generation.c.
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
	pg_atomic_uint64 last_used;	/* TimestampTz, for reuse when full */
	pg_atomic_uint64 c[FS_STAT_NCOUNTERS];
} FsStatsEntry;

typedef struct FsStatsShared
{
	LWLock	   *lock;
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

/*
 * Removes the least recently used entry; the caller holds the lock
 * exclusively.  False if there is none.
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

		if (used < oldest)
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
					 errdetail("It holds fstore.max_feature_views = %d views across all databases; the views beyond that are not counted.",
							   fs_max_feature_views),
					 errhint("Raise fstore.max_feature_views (needs a restart).")));
		warned_full = true;
		return NULL;
	}
	if (!found)
	{
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
	hash_search(stats_hash, &key, HASH_REMOVE, NULL);
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
