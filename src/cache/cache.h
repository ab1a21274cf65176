/*
 * cache.h
 *		The hot cache: online rows of feature views in shared memory.
 *
 * Readers look up a batch of keys (cache_lookup), read the misses from the
 * online table with a fresh snapshot, and offer them back (cache_fill); a
 * fill is installed only if no writer of those keys committed, or was
 * committing, since the lookup.  Writers note the keys (or whole views)
 * they change (cache_note_*); at pre-commit the cache drops those entries
 * and blocks fills of them until the commit (or abort) is over.
 *
 * Dependency direction: cache/ uses keys/, stats/, catalog/ and util/ (and
 * the pack plan type of util/packed.h); apply/ (writers note changes),
 * online/ (readers) and src/fstore.c use it from above.  It never calls a
 * reader or a writer.
 */
#ifndef FS_CACHE_H
#define FS_CACHE_H

#include "access/htup.h"
#include "utils/snapshot.h"

#include "catalog/metadata.h"
#include "keys/keys.h"

extern int	fs_cache_size_kb;
extern bool fs_cache_enabled;

extern void fs_cache_init(void);
extern void fs_wal_init(void);	/* the WAL resource manager (wal.c) */
extern Size fs_cache_shmem_size(void);
extern int	fs_cache_lwlocks(void);
extern void fs_cache_shmem_startup(void);

/* What a lookup hands to the matching fill. */
typedef struct FsCacheFill
{
	FsView	   *view;
	uint64		generation;		/* the view's generation at lookup */
	bool		fill_allowed;	/* false: a writer was committing */
	uint64	   *full_hash;		/* per distinct key */
	char	   *keybuf;			/* serialized keys */
	uint32	   *key_off;		/* per distinct key: offset in keybuf */
	uint16	   *key_len;		/* per distinct key; 0: not cacheable */
	uint64	   *stripe_version; /* per distinct key, at lookup */
	bool	   *stripe_busy;	/* per distinct key: writer committing */
	int64		hits;
	int64		misses;
} FsCacheFill;

/* true when this call may use the cache for the view */
extern bool fs_cache_usable(FsView *view);

/*
 * What the cache answered for one distinct key.  A row is copied into the
 * caller's buffer: as a packed record when the caller gave a pack
 * plan that applies to it, else as a heap tuple header (len bytes).
 */
typedef enum FsCachedKind
{
	FS_CACHED_MISS = 0,			/* not in the cache: read the table */
	FS_CACHED_ABSENT,			/* the key is known to have no row */
	FS_CACHED_TUPLE,
	FS_CACHED_PACKED
} FsCachedKind;

typedef struct FsCachedRow
{
	uint32		kind;			/* FsCachedKind */
	uint32		len;
	char	   *data;			/* in the caller's FsRowBuf, or where the
								 * caller asked for a packed record */
} FsCachedRow;

/*
 * Memory that rows are copied into, kept by the caller across calls: a few
 * blocks, bump-allocated, never moved (pointers stay valid until the next
 * reset).  A reset keeps one block as large as the last call needed, so a
 * steady load allocates nothing; past max_keep bytes everything is freed.
 */
#define FS_ROWBUF_BLOCKS 32

typedef struct FsRowBuf
{
	MemoryContext cxt;			/* where the blocks live */
	Size		max_keep;
	int			nblocks;
	char	   *block[FS_ROWBUF_BLOCKS];
	Size		size[FS_ROWBUF_BLOCKS];
	Size		used;			/* of the last block */
} FsRowBuf;

extern void fs_rowbuf_reset(FsRowBuf *buf);
extern char *fs_rowbuf_alloc(FsRowBuf *buf, Size size);

struct FsPackPlan;

/*
 * Looks up every distinct key of the batch and sets rows[d] (one hash probe
 * each, the copy made under the partition's shared lock); the misses are
 * to be read from the table.  With a usable plan, a hit's packed record is
 * written at rows[d].data when the caller set it (room for plan->reclen
 * bytes), else in buf.
 */
extern void fs_cache_lookup(FsView *view, FsKeyBatch *batch, FsCacheFill *fill,
							const struct FsPackPlan *plan, FsRowBuf *buf,
							FsCachedRow *rows);

/* Offers rows read from the table for the misses which[0..n-1]. */
extern void fs_cache_fill(FsCacheFill *fill, FsKeyBatch *batch, const int *which,
						  int n, HeapTuple *rows, TupleDesc desc);

/* Snapshot for reading misses: the latest committed state, without this
 * transaction's own changes. */
extern Snapshot fs_cache_fill_snapshot(void);

/* ---- writers (coherence.c) ---- */
extern void fs_cache_note_key(FsView *view, const Datum *keyvals);
extern void fs_cache_note_view(FsView *view);
extern bool fs_cache_view_dirty(FsView *view);

/* ---- internal, shared by cache.c and coherence.c ---- */
extern bool fs_cache_active(void);
extern uint64 fs_cache_full_hash(FsView *view, uint64 keyhash);
extern void fs_cache_begin_invalidate(Oid dbid, int64 view_id, uint64 *hashes, int n);
extern void fs_cache_end_invalidate(void);
extern void fs_cache_totals(int64 *entries, int64 *live_bytes, int64 *evictions,
							int64 *capacity);

/* ---- hot standbys (wal.c, and the holds its redo takes in cache.c) ---- */
#define FS_CACHE_STRIPE_WORDS 128	/* one 64-bit word of stripes per partition */

extern Size fs_wal_shmem_size(void);
extern void fs_wal_shmem_startup(void);
extern bool fs_wal_wanted(void);
extern void fs_wal_log_invalidations(int nviews, const int64 *view_ids,
									 const bool *whole, const int *nhashes,
									 uint64 *const *hashes);
extern bool fs_standby_reader_ready(void);

extern void fs_cache_hold_keys(Oid dbid, int64 view_id, uint64 *hashes, int n,
							   uint64 *held);
extern void fs_cache_hold_all(uint64 *held);
extern void fs_cache_release_held(uint64 *held);

#endif							/* FS_CACHE_H */
