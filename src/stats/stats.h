/*
 * stats.h
 *		Per-view counters in shared memory (fstore.stats).
 *
 * Dependency direction: stats/ (counters, progress) depends on util/ only;
 * the parts that count (cache/, shard/, apply/, ingest/, online/, ...) use
 * it from above.
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

/* the counters' shared memory: size and attach/create */
extern Size fs_stats_shmem_size(void);
extern void fs_stats_shmem_startup(void);

#endif							/* FS_STATS_H */
