/*
 * viewtable.h
 *		A table of per-view state in shared memory, keyed by (database,
 *		view_id), of fstore.max_feature_views entries (viewtable.c).
 *
 * Dependency direction: a leaf (util/); PostgreSQL and util.h only.  The
 * counters (stats/stats.c), the writers' freshness state
 * (stats/freshness.c) and the hot cache's generations (cache/generation.c)
 * each keep one.
 */
#ifndef FS_VIEWTABLE_H
#define FS_VIEWTABLE_H

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"

/* hashed as bytes, so laid out without padding */
typedef struct FsViewKey
{
	int64		view_id;
	Oid			dbid;
	uint32		zero;			/* always 0 */
} FsViewKey;

/* The start of every entry; the owner's fields follow. */
typedef struct FsViewEntry
{
	FsViewKey	key;			/* hash key */
	pg_atomic_uint64 last_used;	/* TimestampTz, for reuse when full */
} FsViewEntry;

typedef struct FsViewTable
{
	/* set by the owner */
	const char *name;			/* of the shared hash */
	const char *tranche;		/* a named LWLock tranche of one lock */
	Size		entrysize;
	void		(*init_entry) (FsViewEntry *e); /* a new entry's own fields */
	bool		(*may_evict) (FsViewEntry *e);	/* NULL: any entry may go */
	const char *full_detail;	/* DETAIL when full; %d: the table's size */
	/* attached by fs_viewtable_shmem_startup */
	LWLock	   *lock;
	HTAB	   *hash;
	bool		warned_full;	/* in this backend */
} FsViewTable;

extern Size fs_viewtable_shmem_size(const FsViewTable *t);
extern void fs_viewtable_shmem_startup(FsViewTable *t);
extern FsViewKey fs_viewtable_key(Oid dbid, int64 view_id);

/*
 * The entry of (dbid, view_id), created if need be (the least recently
 * used entry that may_evict allows goes when the table is full), returned
 * with t->lock held in shared mode: enough to read and update its atomics.
 * NULL, with no lock held, when no entry can be had (a WARNING once per
 * backend).
 */
extern FsViewEntry *fs_viewtable_enter(FsViewTable *t, Oid dbid, int64 view_id);

/* The entry of (dbid, view_id) if there is one, as fs_viewtable_enter. */
extern FsViewEntry *fs_viewtable_find(FsViewTable *t, Oid dbid, int64 view_id);

/* Removes the entry of (dbid, view_id), unless may_evict refuses. */
extern void fs_viewtable_remove(FsViewTable *t, Oid dbid, int64 view_id);

#endif							/* FS_VIEWTABLE_H */
