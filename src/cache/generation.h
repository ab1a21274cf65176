/*
 * generation.h
 *		The hot cache's per-view state in shared memory: each view's
 *		generation and "busy" count (generation.c).
 *
 * Dependency direction: part of cache/; depends on util/ only.  Not to be
 * confused with the table fstore.view_state (freshness of each view's
 * writes), which apply/ keeps.
 */
#ifndef FS_CACHE_GENERATION_H
#define FS_CACHE_GENERATION_H

extern Size fs_viewgen_shmem_size(void);
extern void fs_viewgen_shmem_startup(void);

/*
 * The view's current generation and whether a writer is between pre-commit
 * and commit of a whole-view invalidation; false when there is no state
 * (not preloaded, or the table is full).
 */
extern bool fs_viewgen_get(int64 view_id, uint64 *generation, bool *busy);

/* A whole-view invalidation: a new generation, busy until the end. */
extern bool fs_viewgen_begin_invalidate(int64 view_id);
extern void fs_viewgen_end_invalidate(int64 view_id);

/* The same for a view of any database (a standby's redo: wal.c). */
extern bool fs_viewgen_begin_invalidate_db(Oid dbid, int64 view_id);
extern void fs_viewgen_end_invalidate_db(Oid dbid, int64 view_id);

/* Drops the view's state (unless a writer is invalidating it). */
extern void fs_viewgen_forget(int64 view_id);

#endif							/* FS_CACHE_GENERATION_H */
