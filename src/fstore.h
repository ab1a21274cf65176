/*
 * fstore.h
 *		Declarations shared by every part of fstore: the per-part init and
 *		shared-memory entry points that _PG_init fans out to, and the
 *		settings more than one part reads.
 *
 * Parts: catalog/ (metadata of entities, views, services), online/ (reads
 * and change-detecting writes), stats/ (per-view counters in shared
 * memory), cache/ (the hot cache), ingest/ (stream workers).
 */
#ifndef FSTORE_H
#define FSTORE_H

#include "postgres.h"

/* true once our shmem_startup hook has run in this process */
extern bool fs_shmem_ready;

/* settings owned by fstore.c */
extern int	fs_max_keys_per_call;
extern int	fs_max_feature_views;

/* per-part initialization, called from _PG_init (the cache's and the
 * ingest part's are in cache/cache.h and ingest/ingest.h) */
extern void fs_catalog_init(void);
extern void fs_wal_init(void);
extern void fs_training_init(void);
extern void fs_output_init(void);

/* the counters' shared memory: size and attach/create */
extern Size fs_stats_shmem_size(void);
extern void fs_stats_shmem_startup(void);

/* the standby invalidations' shared memory (cache/wal.c) */
extern Size fs_wal_shmem_size(void);
extern void fs_wal_shmem_startup(void);

/* a hint to bring addr's cache line in ahead of use */
#if defined(__GNUC__) || defined(__clang__)
#define fs_prefetch(addr) __builtin_prefetch(addr)
#else
#define fs_prefetch(addr) ((void) 0)
#endif

/* true when fstore was loaded through shared_preload_libraries */
extern bool fs_preloaded(void);

#endif							/* FSTORE_H */
