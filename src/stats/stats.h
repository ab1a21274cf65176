/*
 * stats.h
 *		Per-view state in shared memory: counters (fstore.stats) and the
 *		hot cache's view generation.
 */
#ifndef FS_STATS_H
#define FS_STATS_H

typedef enum FsStatCounter
{
	FS_STAT_LOOKUPS,
	FS_STAT_KEYS_REQUESTED,
	FS_STAT_CACHE_HITS,
	FS_STAT_CACHE_MISSES,
	FS_STAT_EVICTIONS,
	FS_STAT_ROWS_WRITTEN,
	FS_STAT_ROWS_UNCHANGED,
	FS_STAT_ROWS_LATE,
	FS_STAT_STREAM_APPLIED,
	FS_STAT_STREAM_BATCHES,
	FS_STAT_DEAD_LETTERS,
	FS_STAT_NCOUNTERS
} FsStatCounter;

/* Adds to counters of a view; a no-op when fstore is not preloaded. */
extern void fs_stats_add(int64 view_id, const int64 *deltas);
extern void fs_stats_count_lookup(int64 view_id, int64 keys, int64 hits, int64 misses);
extern void fs_stats_count_writes(int64 view_id, int64 written, int64 unchanged, int64 late);
extern void fs_stats_forget(int64 view_id);

/* view generation and busy flag for the hot cache (false: no state) */
extern bool fs_view_state(int64 view_id, uint64 *generation, bool *busy);
extern bool fs_view_state_begin_invalidate(int64 view_id);
extern void fs_view_state_end_invalidate(int64 view_id);
extern bool fs_view_state_begin_invalidate_db(Oid dbid, int64 view_id);
extern void fs_view_state_end_invalidate_db(Oid dbid, int64 view_id);

#endif							/* FS_STATS_H */
