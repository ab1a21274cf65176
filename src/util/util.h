/*
 * util.h
 *		What every part of fstore may use: whether fstore was preloaded,
 *		the settings more than one part reads, and a prefetch hint.
 *
 * Dependency direction: a leaf.  util/ depends on PostgreSQL only; every
 * other part may include it.  The module graph is checked by
 * scripts/modgraph.sh; from the leaves up:
 *
 *   util, catalog, keys, stats, cache, shard, apply, aggregate, ingest,
 *   online, materialize, training, top (src/fstore.c)
 *
 * A part uses only the parts listed before it (not all of them); src/fstore.c
 * (_PG_init, the settings) is the only one that sees every part.
 */
#ifndef FS_UTIL_H
#define FS_UTIL_H

/* true once fstore's shared-memory startup hook has run in this process */
extern bool fs_shmem_ready;

/* settings more than one part reads (defined in _PG_init, src/fstore.c) */
extern int	fs_max_keys_per_call;
extern int	fs_max_feature_views;
extern int	fs_stream_batch_size;	/* defined by ingest/worker.c */

/* true when fstore was loaded through shared_preload_libraries */
extern bool fs_preloaded(void);

/* a hint to bring addr's cache line in ahead of use */
#if defined(__GNUC__) || defined(__clang__)
#define fs_prefetch(addr) __builtin_prefetch(addr)
#else
#define fs_prefetch(addr) ((void) 0)
#endif

#endif							/* FS_UTIL_H */
