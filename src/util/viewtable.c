/*
 * viewtable.c
 *		A table of per-view state in shared memory.
 *
 * One shared hash, keyed by (database, view_id), holds an entry per view
 * used since startup.  It is protected by one LWLock: shared to find an
 * entry and update its atomics, exclusive to create or remove entries.  It
 * is fixed-size (fstore.max_feature_views entries for all databases
 * together).  When it is full, the entry used least recently (among those
 * the owner's may_evict allows) is given to the new view: entries of
 * dropped databases and views go that way.  Only when no entry may go does
 * a view get none; a WARNING says so once per backend.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "util/util.h"
#include "util/viewtable.h"

Size
fs_viewtable_shmem_size(const FsViewTable *t)
{
	return hash_estimate_size(fs_max_feature_views, t->entrysize);
}

void
fs_viewtable_shmem_startup(FsViewTable *t)
{
	HASHCTL		info;

	t->lock = &(GetNamedLWLockTranche(t->tranche))->lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(FsViewKey);
	info.entrysize = t->entrysize;
	t->hash = ShmemInitHash(t->name, fs_max_feature_views, fs_max_feature_views,
							&info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
}

FsViewKey
fs_viewtable_key(Oid dbid, int64 view_id)
{
	FsViewKey	key;

	key.view_id = view_id;
	key.dbid = dbid;
	key.zero = 0;
	return key;
}

/*
 * Removes the least recently used entry that may go; the caller holds the
 * lock exclusively.  False if there is none.
 */
static bool
evict_least_used(FsViewTable *t)
{
	HASH_SEQ_STATUS seq;
	FsViewEntry *e;
	FsViewKey	victim;
	uint64		oldest = PG_UINT64_MAX;

	hash_seq_init(&seq, t->hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		uint64		used = pg_atomic_read_u64(&e->last_used);

		if (used < oldest && (t->may_evict == NULL || t->may_evict(e)))
		{
			oldest = used;
			victim = e->key;
		}
	}
	if (oldest == PG_UINT64_MAX)
		return false;
	hash_search(t->hash, &victim, HASH_REMOVE, NULL);
	return true;
}

FsViewEntry *
fs_viewtable_enter(FsViewTable *t, Oid dbid, int64 view_id)
{
	FsViewKey	key = fs_viewtable_key(dbid, view_id);
	FsViewEntry *e;
	bool		found;

	LWLockAcquire(t->lock, LW_SHARED);
	e = hash_search(t->hash, &key, HASH_FIND, NULL);
	if (e != NULL)
	{
		pg_atomic_write_u64(&e->last_used, (uint64) GetCurrentTimestamp());
		return e;
	}
	LWLockRelease(t->lock);

	LWLockAcquire(t->lock, LW_EXCLUSIVE);
	e = hash_search(t->hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL && evict_least_used(t))
		e = hash_search(t->hash, &key, HASH_ENTER_NULL, &found);
	if (e == NULL)
	{
		LWLockRelease(t->lock);
		if (!t->warned_full)
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("fstore view table is full"),
					 errdetail(t->full_detail, fs_max_feature_views),
					 errhint("Raise fstore.max_feature_views (needs a restart).")));
		t->warned_full = true;
		return NULL;
	}
	if (!found)
	{
		pg_atomic_init_u64(&e->last_used, (uint64) GetCurrentTimestamp());
		t->init_entry(e);
	}
	/* keep the promise of a shared lock: it is enough for atomics */
	LWLockRelease(t->lock);
	LWLockAcquire(t->lock, LW_SHARED);
	e = hash_search(t->hash, &key, HASH_FIND, NULL);
	if (e == NULL)
		LWLockRelease(t->lock);	/* removed meanwhile */
	return e;
}

FsViewEntry *
fs_viewtable_find(FsViewTable *t, Oid dbid, int64 view_id)
{
	FsViewKey	key = fs_viewtable_key(dbid, view_id);
	FsViewEntry *e;

	LWLockAcquire(t->lock, LW_SHARED);
	e = hash_search(t->hash, &key, HASH_FIND, NULL);
	if (e == NULL)
		LWLockRelease(t->lock);
	return e;
}

void
fs_viewtable_remove(FsViewTable *t, Oid dbid, int64 view_id)
{
	FsViewKey	key = fs_viewtable_key(dbid, view_id);
	FsViewEntry *e;

	LWLockAcquire(t->lock, LW_EXCLUSIVE);
	e = hash_search(t->hash, &key, HASH_FIND, NULL);
	if (e != NULL && (t->may_evict == NULL || t->may_evict(e)))
		hash_search(t->hash, &key, HASH_REMOVE, NULL);
	LWLockRelease(t->lock);
}
