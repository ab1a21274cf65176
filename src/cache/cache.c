/*
 * cache.c
 *		The hot cache: storage, lookup, fill, eviction and invalidation.
 *
 * Layout.  fstore.cache_size bytes of main shared memory, split into
 * FS_CACHE_PARTS partitions, each with its own LWLock (tranche
 * "fstore_cache"), a chained hash index (an array of bucket heads) and a
 * ring buffer that holds the entries.  An entry is a header, the key in a
 * canonical byte form, and the online row as a detoasted heap tuple.
 * Entries are appended at the ring's head; making room releases entries at
 * the tail (FIFO with a second chance: an entry read since it was written
 * is copied to the head once instead of being evicted).  A ring never
 * fragments, so memory use is fixed whatever the churn.  Absent keys are
 * cached too (an entry without a row).  Why not a shared dynahash: its
 * entries are fixed-size, allocated for the most entries it may hold, and
 * freed one by one, while cached rows vary in size from a few bytes to
 * kilobytes; the ring holds as many rows as fit in fstore.cache_size, and
 * the hand-made index keeps the per-partition locks, the stripes and the
 * prefetching of the lookup path (a dynahash partition lock would cover
 * buckets, not the rows' memory).  Small fixed-size per-view state (the
 * generations, cache/generation.c; the counters, stats/) uses dynahash.
 *
 * Reads.  A lookup probes each distinct key once and copies what it finds,
 * under the partition's shared lock, straight into the form the caller
 * answers with: for a packed answer the key's packed record, made by
 * copying byte runs of the stored row when the caller's recipe applies to
 * it (packed.h: fixed-size features, no NULLs), else the row itself.  The
 * copies go to a buffer the caller keeps across calls.  The bucket heads
 * and entries of a batch are scattered over the whole cache, so every key
 * costs cache and TLB misses; the lookup overlaps them by working through
 * the keys in groups of 16 as a pipeline (bucket heads three groups ahead,
 * entries two groups ahead, the second entry of a chain one group ahead),
 * each stage a short loop with no dependent loads.
 *
 * Keys.  An entry is found by a 64-bit hash of (database, view, key) and
 * then compared byte for byte on the key.  The key hash uses each key
 * type's own hash function, so keys that the primary key calls equal hash
 * alike even when their bytes differ; invalidation is by hash, never by
 * bytes, so it reaches all of them.
 *
 * Coherence.  Each partition has FS_CACHE_STRIPES stripes of two counters:
 * a version and the number of writers "in flight" on the stripe.  A writer
 * that changed keys, at pre-commit: raises in-flight on the keys' stripes
 * and deletes their entries; at commit or abort: lowers in-flight and
 * bumps the versions.  A reader records, under the partition lock, the
 * stripe version of each miss, then reads the table with a snapshot taken
 * after that, and installs a row only if, under the exclusive lock, the
 * stripe has the same version and nobody in flight.  Thus a row read
 * before a concurrent commit can never be installed after it; and a row
 * installed before a writer's pre-commit is deleted by it.  Whole-view
 * invalidations (plain DML, TRUNCATE, very large writes) go through the
 * view's generation instead (generation.c).  The snapshot for misses is the
 * latest one with this transaction's own changes hidden, so the cache
 * only ever holds committed rows.
 *
 * Lock order: a partition lock is never held while taking another lock;
 * the view generations' lock (generation.c) is never held while taking a
 * partition's.
 */
#include "postgres.h"

#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "cache/cache.h"
#include "cache/generation.h"
#include "util/packed.h"
#include "stats/stats.h"
#include "util/util.h"

#define FS_CACHE_PARTS		128
#define FS_CACHE_PART_BITS	7
#define FS_CACHE_STRIPES	64
#define FS_CACHE_MAX_KEY	1024	/* longer keys are not cached */
#define FS_CACHE_MAX_ENTRY	(64 * 1024)
#define FS_CACHE_MAX_MOVES	8		/* second chances per insertion */

/* entry flags */
#define ENTRY_LIVE			0x01	/* in a hash chain */
#define ENTRY_ABSENT		0x02	/* the key has no online row */
#define ENTRY_FILLER		0x04	/* padding up to the end of the ring */

int			fs_cache_size_kb = 131072;
bool		fs_cache_enabled = true;
static int	fs_cache_debug_pause = 0;

typedef struct FsCacheEntry
{
	uint32		size;			/* bytes of this record in the ring */
	uint32		next;			/* next in chain: offset + 1, or 0 */
	uint64		hash;
	int64		view_id;
	uint64		generation;
	Oid			dbid;
	uint32		shape;			/* FsView.shape at fill */
	uint32		rowlen;
	uint16		keylen;
	uint8		flags;
	uint8		referenced;		/* read since written or moved */
	/* key bytes follow, then the row at a MAXALIGNed offset */
} FsCacheEntry;

#define ENTRY_HDR		MAXALIGN(sizeof(FsCacheEntry))
#define ENTRY_ROW_OFF(klen)	(ENTRY_HDR + MAXALIGN(klen))

typedef struct FsCachePart
{
	LWLock	   *lock;
	Size		offset;			/* of this partition's memory in the area */
	uint32		nbuckets;		/* power of two */
	uint32		ringsize;
	uint32		head;
	uint32		tail;
	uint32		used;			/* bytes from tail to head, dead ones too */
	uint32		nentries;
	uint64		live_bytes;
	uint64		evictions;
	uint64		stripe_version[FS_CACHE_STRIPES];
	uint32		stripe_busy[FS_CACHE_STRIPES];
} FsCachePart;

typedef struct FsCacheShared
{
	Size		part_bytes;
	uint32		max_entry;
	FsCachePart parts[FS_CACHE_PARTS];
} FsCacheShared;

StaticAssertDecl(FS_CACHE_PARTS == FS_CACHE_STRIPE_WORDS && FS_CACHE_STRIPES == 64,
				 "a hold marks the stripes of a partition in one 64-bit word");

static FsCacheShared *cache = NULL;
static char *cache_area = NULL;


/* stripes this transaction holds in flight, released at commit/abort */
typedef struct HeldStripe
{
	uint16		part;
	uint16		stripe;
	uint32		count;
} HeldStripe;

static HeldStripe *held = NULL;
static int	nheld = 0;
static int	held_cap = 0;

/* evictions by victim view, flushed to the stats after the lock is gone */
typedef struct EvictAcc
{
	int			n;
	int64		view_id[8];
	Oid			dbid[8];
	int64		count[8];
} EvictAcc;

void
fs_cache_init(void)
{
	/* a postmaster setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("fstore.cache_size",
								"Shared memory for the hot cache of online rows.",
								"0 turns the cache off.",
								&fs_cache_size_kb,
								131072, 0, 512 * 1024 * 1024,	/* 128 rings of 4GB */
								PGC_POSTMASTER, GUC_UNIT_KB,
								NULL, NULL, NULL);
	DefineCustomBoolVariable("fstore.cache_enabled",
							 "Whether fs_get_many uses the hot cache in this session.",
							 NULL,
							 &fs_cache_enabled,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("fstore.debug_fill_pause",
							"For tests: before installing fills, wait for this advisory lock.",
							NULL,
							&fs_cache_debug_pause,
							0, 0, INT_MAX,
							PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							NULL, NULL, NULL);
}

static Size
part_bytes(void)
{
	Size		total = (Size) fs_cache_size_kb * 1024;

	return MAXALIGN_DOWN(total / FS_CACHE_PARTS);
}

Size
fs_cache_shmem_size(void)
{
	if (fs_cache_size_kb <= 0)
		return 0;
	return add_size(MAXALIGN(sizeof(FsCacheShared)),
					mul_size(part_bytes(), FS_CACHE_PARTS));
}

int
fs_cache_lwlocks(void)
{
	return FS_CACHE_PARTS;
}

void
fs_cache_shmem_startup(void)
{
	bool		found;
	Size		pb;
	int			i;

	if (fs_cache_size_kb <= 0)
		return;
	pb = part_bytes();
	cache = ShmemInitStruct("fstore cache", fs_cache_shmem_size(), &found);
	cache_area = (char *) cache + MAXALIGN(sizeof(FsCacheShared));
	if (found)
		return;

	cache->part_bytes = pb;
	for (i = 0; i < FS_CACHE_PARTS; i++)
	{
		FsCachePart *p = &cache->parts[i];
		uint32		nb = 64;

		/* a bucket per 128 to 256 bytes of partition: short chains */
		while ((Size) nb * 128 * 2 <= pb && nb < (1U << 28))
			nb <<= 1;
		memset(p, 0, sizeof(FsCachePart));
		p->lock = &(GetNamedLWLockTranche("fstore_cache")[i].lock);
		p->offset = (Size) i * pb;
		p->nbuckets = nb;
		p->ringsize = (uint32) Min(MAXALIGN_DOWN(pb - (Size) nb * sizeof(uint32)),
								   (Size) PG_UINT32_MAX - MAXIMUM_ALIGNOF);
		memset(cache_area + p->offset, 0, (Size) nb * sizeof(uint32));
	}
	cache->max_entry = Min(FS_CACHE_MAX_ENTRY, cache->parts[0].ringsize / 8);
}

static inline uint32 *
part_buckets(FsCachePart *p)
{
	return (uint32 *) (cache_area + p->offset);
}

static inline char *
part_ring(FsCachePart *p)
{
	return cache_area + p->offset + (Size) p->nbuckets * sizeof(uint32);
}

static inline FsCacheEntry *
entry_at(FsCachePart *p, uint32 off)
{
	return (FsCacheEntry *) (part_ring(p) + off);
}

static inline int
hash_part(uint64 h)
{
	return (int) (h >> (64 - FS_CACHE_PART_BITS));
}

static inline int
hash_stripe(uint64 h)
{
	return (int) ((h >> 32) & (FS_CACHE_STRIPES - 1));
}

static inline uint32
hash_bucket(FsCachePart *p, uint64 h)
{
	return (uint32) (h & (p->nbuckets - 1));
}

static inline uint64
view_hash(FsView *view)
{
	return hash_bytes_uint32_extended((uint32) view->view_id,
									  ((uint64) MyDatabaseId << 32) |
									  (uint32) (view->view_id >> 32));
}

uint64
fs_cache_full_hash(FsView *view, uint64 keyhash)
{
	return hash_combine64(keyhash, view_hash(view));
}

bool
fs_cache_usable(FsView *view)
{
	return cache != NULL && fs_cache_enabled &&
		(!RecoveryInProgress() || fs_standby_reader_ready()) &&
		!IsolationUsesXactSnapshot() &&
		!fs_cache_view_dirty(view);
}

Snapshot
fs_cache_fill_snapshot(void)
{
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());

	/*
	 * A command id of zero hides every change of this transaction: rows it
	 * inserted are invisible and rows it deleted still visible.
	 */
	snap->curcid = FirstCommandId;
	return snap;
}

/*
 * Writes a key in canonical bytes: fixed-length values as their bytes,
 * variable-length ones as a 4-byte length and their data.  Returns the
 * length, or 0 when the key is too long to cache.
 */
static int
key_serialize(FsView *view, const Datum *vals, char *buf)
{
	char	   *p = buf;
	int			k;

	for (k = 0; k < view->nkeys; k++)
	{
		FsColumn   *c = &view->cols[k];

		if (c->typbyval)
		{
			if (p - buf + c->typlen > FS_CACHE_MAX_KEY)
				return 0;
			store_att_byval(p, vals[k], c->typlen);
			p += c->typlen;
		}
		else if (c->typlen > 0)
		{
			if (p - buf + c->typlen > FS_CACHE_MAX_KEY)
				return 0;
			memcpy(p, DatumGetPointer(vals[k]), c->typlen);
			p += c->typlen;
		}
		else
		{
			struct varlena *v;
			uint32		len;
			const char *data;

			if (c->typlen == -1)
			{
				v = PG_DETOAST_DATUM_PACKED(vals[k]);
				len = VARSIZE_ANY_EXHDR(v);
				data = VARDATA_ANY(v);
			}
			else
			{
				data = DatumGetCString(vals[k]);
				len = strlen(data);
			}
			if (p - buf + 4 + len > FS_CACHE_MAX_KEY)
				return 0;
			memcpy(p, &len, 4);
			memcpy(p + 4, data, len);
			p += 4 + len;
		}
	}
	return (int) (p - buf);
}

/* Finds the live entry of (view, key); sets *prevp to the link to it. */
static FsCacheEntry *
chain_find(FsCachePart *p, uint64 hash, FsView *view, const char *key, int klen,
		   uint32 **prevp)
{
	uint32	   *link = &part_buckets(p)[hash_bucket(p, hash)];

	while (*link != 0)
	{
		FsCacheEntry *e = entry_at(p, *link - 1);

		if (e->hash == hash && e->view_id == view->view_id &&
			e->dbid == MyDatabaseId && e->keylen == klen &&
			memcmp((char *) e + ENTRY_HDR, key, klen) == 0)
		{
			if (prevp)
				*prevp = link;
			return e;
		}
		link = &e->next;
	}
	return NULL;
}

/* Unlinks a live entry (its link is *link) and marks it dead. */
static void
entry_delete(FsCachePart *p, uint32 *link, FsCacheEntry *e)
{
	*link = e->next;
	e->next = 0;
	e->flags &= ~ENTRY_LIVE;
	p->nentries--;
	p->live_bytes -= e->size;
}

/* Finds the link that points to the live entry at off. */
static uint32 *
chain_link_to(FsCachePart *p, FsCacheEntry *e, uint32 off)
{
	uint32	   *link = &part_buckets(p)[hash_bucket(p, e->hash)];

	while (*link != 0 && *link != off + 1)
		link = &entry_at(p, *link - 1)->next;
	Assert(*link == off + 1);
	return link;
}

/*
 * Fills the ring from head to its end with a filler entry (when there is
 * room for its header) and counts that space as used; the caller moves
 * head to the start.
 */
static void
ring_pad_end(FsCachePart *p)
{
	uint32		gap = p->ringsize - p->head;

	if (gap >= ENTRY_HDR)
	{
		FsCacheEntry *f = entry_at(p, p->head);

		f->size = gap;
		f->flags = ENTRY_FILLER;
		f->next = 0;
	}
	p->used += gap;
}

/* Places need bytes at the head if there is room; returns offset or -1. */
static int64
ring_place(FsCachePart *p, uint32 need)
{
	uint32		off;

	if (p->used == 0)
		p->head = p->tail = 0;
	if (p->used == 0 || p->head > p->tail)
	{
		if (p->ringsize - p->head >= need)
		{
			off = p->head;
			p->head += need;
			p->used += need;
			if (p->head == p->ringsize)
				p->head = 0;
			return off;
		}
		if (p->used > 0 && p->tail >= need)
		{
			/* the end of the ring is too short: pad it and wrap */
			ring_pad_end(p);
			p->head = need;
			p->used += need;
			return 0;
		}
		return -1;
	}
	if (p->head < p->tail && p->tail - p->head >= need)
	{
		off = p->head;
		p->head += need;
		p->used += need;
		return off;
	}
	return -1;
}

static void
evict_count(EvictAcc *acc, FsCacheEntry *e)
{
	int			i;

	for (i = 0; i < acc->n; i++)
		if (acc->view_id[i] == e->view_id && acc->dbid[i] == e->dbid)
		{
			acc->count[i]++;
			return;
		}
	if (acc->n < lengthof(acc->view_id))
	{
		acc->view_id[acc->n] = e->view_id;
		acc->dbid[acc->n] = e->dbid;
		acc->count[acc->n++] = 1;
	}
}

/*
 * Makes the live entry at the tail (offset off) the newest one.  The free
 * space always ends where the tail entry begins, so the entry can slide
 * back over it (an overlapping move); when the free space wraps around the
 * end of the ring, the entry is copied to the end if it fits there, or the
 * end is padded and the entry slides to the start.  No memory is needed.
 */
static void
ring_reinsert_tail(FsCachePart *p, FsCacheEntry *e, uint32 off)
{
	uint32		size = e->size;
	uint32	   *link = chain_link_to(p, e, off);
	uint32		newoff;

	if (p->head > off)
	{
		uint32		gap = p->ringsize - p->head;

		if (gap >= size)
		{
			newoff = p->head;
			memcpy(entry_at(p, newoff), e, size);
			goto moved;
		}
		ring_pad_end(p);
		p->head = 0;
	}
	newoff = p->head;
	memmove(entry_at(p, newoff), e, size);
moved:
	*link = newoff + 1;
	p->head = newoff + size;
	if (p->head >= p->ringsize)
		p->head = 0;
	p->tail = off + size;
	if (p->tail >= p->ringsize)
		p->tail = 0;
}

/* Frees the record at the tail: skips padding, keeps or evicts an entry. */
static void
ring_release_tail(FsCachePart *p, int *moves, EvictAcc *acc)
{
	uint32		off = p->tail;
	FsCacheEntry *e;
	uint32		size;

	if (p->ringsize - off < ENTRY_HDR)
	{
		/* implicit padding at the end */
		p->used -= p->ringsize - off;
		p->tail = 0;
		goto done;
	}
	e = entry_at(p, off);
	size = e->size;
	if ((e->flags & ENTRY_LIVE) && e->referenced && *moves < FS_CACHE_MAX_MOVES)
	{
		/* second chance: read since it was written, so keep it */
		(*moves)++;
		e->referenced = 0;
		ring_reinsert_tail(p, e, off);
		return;
	}
	if (e->flags & ENTRY_LIVE)
	{
		entry_delete(p, chain_link_to(p, e, off), e);
		p->evictions++;
		if (acc)
			evict_count(acc, e);
	}
	p->used -= size;
	p->tail += size;
	if (p->tail >= p->ringsize)
		p->tail = 0;
done:
	if (p->used == 0)
		p->head = p->tail = 0;
}

/* Allocates need bytes in the ring, releasing tail records as needed. */
static int64
ring_alloc(FsCachePart *p, uint32 need, EvictAcc *acc)
{
	int			moves = 0;

	if (need > p->ringsize)
		return -1;
	for (;;)
	{
		int64		off = ring_place(p, need);

		if (off >= 0)
			return off;
		if (p->used == 0)
			return -1;
		ring_release_tail(p, &moves, acc);
	}
}

void
fs_rowbuf_reset(FsRowBuf *buf)
{
	Size		total = 0;
	int			i;

	if (buf->nblocks <= 1 && (buf->nblocks == 0 || buf->size[0] <= buf->max_keep))
	{
		buf->used = 0;
		return;
	}
	for (i = 0; i < buf->nblocks; i++)
	{
		total += buf->size[i];
		pfree(buf->block[i]);
	}
	buf->nblocks = 0;
	buf->used = 0;
	if (total <= buf->max_keep)
	{
		/* one block for what the last call needed */
		buf->block[0] = MemoryContextAllocHuge(buf->cxt, total);
		buf->size[0] = total;
		buf->nblocks = 1;
	}
}

char *
fs_rowbuf_alloc(FsRowBuf *buf, Size size)
{
	int			last = buf->nblocks - 1;
	char	   *r;

	size = MAXALIGN(size);
	if (last < 0 || buf->size[last] - buf->used < size)
	{
		Size		bsize = Max(size, 64 * 1024);

		if (last >= 0)
			bsize = Max(bsize, buf->size[last] * 2);
		if (buf->nblocks == FS_ROWBUF_BLOCKS)
			elog(ERROR, "fstore row buffer has too many blocks");
		buf->block[buf->nblocks] = MemoryContextAllocHuge(buf->cxt, bsize);
		buf->size[buf->nblocks++] = bsize;
		buf->used = 0;
		last = buf->nblocks - 1;
	}
	r = buf->block[last] + buf->used;
	buf->used += size;
	return r;
}

/*
 * The lookup works through the keys (in partition order) in groups of
 * LOOKUP_GROUP, as a pipeline: while it probes and copies the keys of one
 * group, it has asked for the bucket heads of the keys three groups ahead,
 * for the entries their chains start with two groups ahead (reading the
 * bucket heads, fetched by then), and, one group ahead, for the next entry
 * of the chains whose first entry (fetched by then) is another key's.
 * Each stage is a short loop of independent loads, so the cache and TLB
 * misses of a whole group are in flight at once.  Measured (docs/cache.md):
 * a prefetch that misses the TLB holds up the instructions behind it until
 * its page walk is done, so asking for one entry per key between the
 * probes (as before) overlapped the misses of only one or two keys.
 */
#ifndef LOOKUP_GROUP
#define LOOKUP_GROUP	16
#endif

/* Asks for the bucket head of key h. */
static inline void
prefetch_bucket(uint64 h)
{
	FsCachePart *p = &cache->parts[hash_part(h)];

	fs_prefetch(&part_buckets(p)[hash_bucket(p, h)]);
}

/* Asks for the lines of an entry: span bytes from e (a recent entry's size). */
static inline void
prefetch_lines(char *e, uint32 span)
{
	char	   *last = e + span - 1;

	fs_prefetch(e);
	for (e = (char *) TYPEALIGN(64, (uintptr_t) e + 1); e <= last; e += 64)
		fs_prefetch(e);
}

/*
 * Asks for the entry that the chain of key h starts with.  The bucket head
 * is read without the partition lock: it is only a hint (an aligned 4-byte
 * read, checked against the ring's size), and the chain is walked again
 * under the lock.
 */
static inline void
prefetch_entry(uint64 h, uint32 span)
{
	FsCachePart *p = &cache->parts[hash_part(h)];
	uint32		head = *(volatile uint32 *) &part_buckets(p)[hash_bucket(p, h)];

	if (head != 0 && head - 1 < p->ringsize)
		prefetch_lines((char *) entry_at(p, head - 1), span);
}

/*
 * When the entry a chain starts with (fetched by now) is another key's,
 * asks for the next one of the chain too.  Read without the lock, as a
 * hint, like the bucket head.
 */
static inline void
prefetch_chain(uint64 h, uint32 span)
{
	FsCachePart *p = &cache->parts[hash_part(h)];
	uint32		head = *(volatile uint32 *) &part_buckets(p)[hash_bucket(p, h)];
	volatile FsCacheEntry *e;
	uint32		next;

	if (head == 0 || head - 1 >= p->ringsize - ENTRY_HDR)
		return;
	e = entry_at(p, head - 1);
	if (e->hash == h)
		return;
	next = e->next;
	if (next != 0 && next - 1 < p->ringsize)
		prefetch_lines((char *) entry_at(p, next - 1), span);
}

void
fs_cache_lookup(FsView *view, FsKeyBatch *b, FsCacheFill *fill,
				const FsPackPlan *plan, FsRowBuf *buf, FsCachedRow *rows)
{
	int			n = b->ndistinct;
	int			counts[FS_CACHE_PARTS + 1];
	int		   *order;
	uint64	   *ohash;
	uint32		span = 256;		/* bytes of an entry, for its prefetch */
	Size		keycap = 0;
	Size		keypos = 0;
	uint64		vh;
	bool		busy;
	int			d;
	int			i;

	memset(fill, 0, sizeof(FsCacheFill));
	fill->view = view;
	/* rows[].data, when the caller set it, is where a packed record goes */
	for (d = 0; d < n; d++)
	{
		rows[d].kind = FS_CACHED_MISS;
		rows[d].len = 0;
		if (plan == NULL)
			rows[d].data = NULL;
	}
	if (n == 0)
		return;

	if (!fs_viewgen_get(view->view_id, &fill->generation, &busy))
	{
		/* no shared state for the view: nothing is served or installed */
		fill->misses = n;
		return;
	}
	fill->fill_allowed = !busy;

	fs_keys_hash(b);
	fill->full_hash = palloc(sizeof(uint64) * n);
	fill->key_off = palloc(sizeof(uint32) * n);
	fill->key_len = palloc(sizeof(uint16) * n);
	fill->stripe_version = palloc(sizeof(uint64) * n);
	fill->stripe_busy = palloc(sizeof(bool) * n);
	keycap = (Size) n * 16 + FS_CACHE_MAX_KEY;
	fill->keybuf = palloc(keycap);
	vh = view_hash(view);
	for (d = 0; d < n; d++)
	{
		int			len;

		if (keycap - keypos < FS_CACHE_MAX_KEY)
		{
			keycap *= 2;
			fill->keybuf = repalloc(fill->keybuf, keycap);
		}
		len = key_serialize(view, FS_KEY_VALUES(b, d), fill->keybuf + keypos);
		fill->key_off[d] = (uint32) keypos;
		fill->key_len[d] = (uint16) len;
		keypos += MAXALIGN(len);
		/* fs_cache_full_hash, with the view's part computed once */
		fill->full_hash[d] = hash_combine64(b->hashes[d], vh);
	}

	/* group the keys by partition: each partition lock is taken once */
	memset(counts, 0, sizeof(counts));
	for (d = 0; d < n; d++)
		counts[hash_part(fill->full_hash[d]) + 1]++;
	for (i = 0; i < FS_CACHE_PARTS; i++)
		counts[i + 1] += counts[i];
	order = palloc(sizeof(int) * n);
	for (d = 0; d < n; d++)
		order[counts[hash_part(fill->full_hash[d])]++] = d;
	/* the hashes in probe order, for the prefetch stages */
	ohash = palloc(sizeof(uint64) * n);
	for (i = 0; i < n; i++)
		ohash[i] = fill->full_hash[order[i]];

	/* fill the pipeline */
	for (i = 0; i < Min(n, 3 * LOOKUP_GROUP); i++)
		prefetch_bucket(ohash[i]);
	for (i = 0; i < Min(n, 2 * LOOKUP_GROUP); i++)
		prefetch_entry(ohash[i], span);
	for (i = 0; i < Min(n, LOOKUP_GROUP); i++)
		prefetch_chain(ohash[i], span);

	for (i = 0; i < n;)
	{
		int			part = hash_part(ohash[i]);
		FsCachePart *p = &cache->parts[part];
		int			j;

		LWLockAcquire(p->lock, LW_SHARED);
		for (j = i; j < n && hash_part(ohash[j]) == part; j++)
		{
			int			dd = order[j];
			uint64		h = ohash[j];
			int			s = hash_stripe(h);
			FsCacheEntry *e;
			HeapTupleHeader t;

			if (j % LOOKUP_GROUP == 0)
			{
				/*
				 * The next group's chains past their first entry, the
				 * entries of the group after, the bucket heads of the one
				 * after that.
				 */
				int			k;
				int			end = Min(n, j + 2 * LOOKUP_GROUP);

				for (k = j + LOOKUP_GROUP; k < end; k++)
					prefetch_chain(ohash[k], span);
				end = Min(n, j + 3 * LOOKUP_GROUP);
				for (k = j + 2 * LOOKUP_GROUP; k < end; k++)
					prefetch_entry(ohash[k], span);
				end = Min(n, j + 4 * LOOKUP_GROUP);
				for (k = j + 3 * LOOKUP_GROUP; k < end; k++)
					prefetch_bucket(ohash[k]);
			}
			fill->stripe_version[dd] = p->stripe_version[s];
			fill->stripe_busy[dd] = p->stripe_busy[s] != 0;
			if (fill->key_len[dd] == 0)
				continue;
			e = chain_find(p, h, view, fill->keybuf + fill->key_off[dd],
						   fill->key_len[dd], NULL);
			if (e == NULL || e->generation != fill->generation ||
				e->shape != view->shape)
				continue;
			if (!e->referenced)
				e->referenced = 1;	/* a benign race: it is only a hint */
			span = Min(e->size, 512);
			if (e->flags & ENTRY_ABSENT)
			{
				rows[dd].kind = FS_CACHED_ABSENT;
				continue;
			}

			/*
			 * One copy, into the form the caller sends: a packed record
			 * straight into its place in the answer when the caller gave
			 * one (rows[dd].data), else into the row buffer.
			 */
			t = (HeapTupleHeader) ((char *) e + ENTRY_ROW_OFF(e->keylen));
			if (plan && plan->usable)
			{
				if (rows[dd].data == NULL)
					rows[dd].data = fs_rowbuf_alloc(buf, plan->reclen);
				if (fs_pack_from_tuple(plan, t, rows[dd].data))
				{
					rows[dd].kind = FS_CACHED_PACKED;
					rows[dd].len = plan->reclen;
					continue;
				}
			}
			rows[dd].data = fs_rowbuf_alloc(buf, e->rowlen);
			rows[dd].kind = FS_CACHED_TUPLE;
			rows[dd].len = e->rowlen;
			memcpy(rows[dd].data, t, e->rowlen);
		}
		LWLockRelease(p->lock);
		i = j;
	}
	pfree(order);
	pfree(ohash);

	for (d = 0; d < n; d++)
	{
		if (rows[d].kind != FS_CACHED_MISS)
			fill->hits++;
		else
			fill->misses++;
	}
}

/* For tests: a point where a reader waits between its read and its fill. */
static void
debug_pause(void)
{
	LOCKTAG		tag;

	if (fs_cache_debug_pause == 0)
		return;
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, (uint32) fs_cache_debug_pause, 2);
	(void) LockAcquire(&tag, ShareLock, false, false);
	LockRelease(&tag, ShareLock, false);
}

void
fs_cache_fill(FsCacheFill *fill, FsKeyBatch *b, const int *which, int n,
			  HeapTuple *rows, TupleDesc desc)
{
	FsView	   *view = fill->view;
	HeapTuple  *flat;
	int		   *order;
	int			counts[FS_CACHE_PARTS + 1];
	EvictAcc	acc;
	uint64		generation;
	bool		busy;
	int			i;

	if (n == 0 || !fill->fill_allowed || fill->full_hash == NULL)
		return;
	debug_pause();
	if (!fs_viewgen_get(view->view_id, &generation, &busy) || busy ||
		generation != fill->generation)
		return;

	/* detoast outside the locks; entries must not point into TOAST */
	flat = palloc(sizeof(HeapTuple) * n);
	for (i = 0; i < n; i++)
	{
		HeapTuple	t = rows[which[i]];

		flat[i] = t;
		if (t != NULL && HeapTupleHasExternal(t))
			flat[i] = toast_flatten_tuple(t, desc);
	}

	memset(counts, 0, sizeof(counts));
	for (i = 0; i < n; i++)
		counts[hash_part(fill->full_hash[which[i]]) + 1]++;
	for (i = 0; i < FS_CACHE_PARTS; i++)
		counts[i + 1] += counts[i];
	order = palloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
		order[counts[hash_part(fill->full_hash[which[i]])]++] = i;

	memset(&acc, 0, sizeof(acc));
	for (i = 0; i < n;)
	{
		int			part = hash_part(fill->full_hash[which[order[i]]]);
		FsCachePart *p = &cache->parts[part];
		int			j;

		LWLockAcquire(p->lock, LW_EXCLUSIVE);
		for (j = i; j < n && hash_part(fill->full_hash[which[order[j]]]) == part; j++)
		{
			int			m = order[j];
			int			d = which[m];
			uint64		h = fill->full_hash[d];
			int			s = hash_stripe(h);
			const char *key = fill->keybuf + fill->key_off[d];
			int			klen = fill->key_len[d];
			HeapTuple	t = flat[m];
			uint32		need;
			uint32	   *link;
			FsCacheEntry *e;
			int64		off;

			if (klen == 0 || fill->stripe_busy[d] ||
				p->stripe_busy[s] != 0 ||
				p->stripe_version[s] != fill->stripe_version[d])
				continue;
			need = ENTRY_ROW_OFF(klen) + (t ? MAXALIGN(t->t_len) : 0);
			if (need > cache->max_entry)
				continue;

			e = chain_find(p, h, view, key, klen, &link);
			if (e != NULL)
				entry_delete(p, link, e);

			off = ring_alloc(p, need, &acc);
			if (off < 0)
				continue;
			e = entry_at(p, (uint32) off);
			e->size = need;
			e->hash = h;
			e->view_id = view->view_id;
			e->generation = fill->generation;
			e->dbid = MyDatabaseId;
			e->shape = view->shape;
			e->keylen = (uint16) klen;
			e->flags = ENTRY_LIVE | (t ? 0 : ENTRY_ABSENT);
			e->referenced = 0;
			e->rowlen = t ? t->t_len : 0;
			memcpy((char *) e + ENTRY_HDR, key, klen);
			if (t)
				memcpy((char *) e + ENTRY_ROW_OFF(klen), t->t_data, t->t_len);
			link = &part_buckets(p)[hash_bucket(p, h)];
			e->next = *link;
			*link = (uint32) off + 1;
			p->nentries++;
			p->live_bytes += need;
		}
		LWLockRelease(p->lock);
		i = j;
	}

	for (i = 0; i < acc.n; i++)
	{
		int64		deltas[FS_STAT_NCOUNTERS] = {0};

		if (acc.dbid[i] != MyDatabaseId)
			continue;			/* counted only for this database's views */
		deltas[FS_STAT_EVICTIONS] = acc.count[i];
		fs_stats_add(acc.view_id[i], deltas);
	}
}

/* sort_hashes(hashes, n): sorts full hashes into partition order */
#define ST_SORT sort_hashes
#define ST_ELEMENT_TYPE uint64
#define ST_COMPARE(a, b) ((*(a) > *(b)) - (*(a) < *(b)))
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * Pre-commit of a writer: for every changed key, raise in-flight on its
 * stripe and delete its entries.  The stripes are remembered and released
 * by fs_cache_end_invalidate at commit or abort.
 */
void
fs_cache_begin_invalidate(Oid dbid, int64 view_id, uint64 *hashes, int n)
{
	int			i;

	if (cache == NULL || n == 0)
		return;
	sort_hashes(hashes, n);			/* partition order */
	if (nheld + n > held_cap)
	{
		int			cap = Max(64, Max(held_cap * 2, nheld + n));

		if (held == NULL)
			held = MemoryContextAlloc(TopMemoryContext, sizeof(HeldStripe) * cap);
		else
			held = repalloc(held, sizeof(HeldStripe) * cap);
		held_cap = cap;
	}

	for (i = 0; i < n;)
	{
		int			part = hash_part(hashes[i]);
		FsCachePart *p = &cache->parts[part];
		int			j;

		LWLockAcquire(p->lock, LW_EXCLUSIVE);
		for (j = i; j < n && hash_part(hashes[j]) == part; j++)
		{
			uint64		h = hashes[j];
			int			s = hash_stripe(h);
			uint32	   *link = &part_buckets(p)[hash_bucket(p, h)];

			p->stripe_busy[s]++;
			if (nheld > 0 && held[nheld - 1].part == part &&
				held[nheld - 1].stripe == s)
				held[nheld - 1].count++;
			else
			{
				held[nheld].part = (uint16) part;
				held[nheld].stripe = (uint16) s;
				held[nheld].count = 1;
				nheld++;
			}
			while (*link != 0)
			{
				FsCacheEntry *e = entry_at(p, *link - 1);

				if (e->hash == h && e->view_id == view_id && e->dbid == dbid)
					entry_delete(p, link, e);
				else
					link = &e->next;
			}
		}
		LWLockRelease(p->lock);
		i = j;
	}
}

/* Commit or abort of a writer: release its stripes and bump their versions. */
void
fs_cache_end_invalidate(void)
{
	int			i;

	for (i = 0; i < nheld;)
	{
		FsCachePart *p = &cache->parts[held[i].part];
		int			j;

		LWLockAcquire(p->lock, LW_EXCLUSIVE);
		for (j = i; j < nheld && held[j].part == held[i].part; j++)
		{
			p->stripe_busy[held[j].stripe] -= held[j].count;
			p->stripe_version[held[j].stripe]++;
		}
		LWLockRelease(p->lock);
		i = j;
	}
	nheld = 0;
}

/* Cache-wide figures for fstore.cache_stats. */
void
fs_cache_totals(int64 *entries, int64 *live_bytes, int64 *evictions,
				int64 *capacity)
{
	int			i;

	*entries = *live_bytes = *evictions = *capacity = 0;
	if (cache == NULL)
		return;
	for (i = 0; i < FS_CACHE_PARTS; i++)
	{
		FsCachePart *p = &cache->parts[i];

		LWLockAcquire(p->lock, LW_SHARED);
		*entries += p->nentries;
		*live_bytes += p->live_bytes;
		*evictions += p->evictions;
		*capacity += p->ringsize;
		LWLockRelease(p->lock);
	}
}

bool
fs_cache_active(void)
{
	return cache != NULL;
}

PG_FUNCTION_INFO_V1(fs_cache_stats);

/* fstore._cache_stats(): one row describing the cache (NULLs when off). */
Datum
fs_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	td;
	Datum		values[5];
	bool		nulls[5] = {false};
	int64		entries;
	int64		live;
	int64		evictions;
	int64		capacity;

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (cache == NULL)
		memset(nulls, true, sizeof(nulls));
	else
	{
		fs_cache_totals(&entries, &live, &evictions, &capacity);
		values[0] = Int64GetDatum(capacity);
		values[1] = Int64GetDatum(live);
		values[2] = Int64GetDatum(entries);
		values[3] = Int64GetDatum(evictions);
		values[4] = Int32GetDatum(FS_CACHE_PARTS);
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}


/* ---- holds of a hot standby's redo (wal.c) ---- */

/*
 * A standby's redo holds stripes on behalf of a writer of the primary until
 * that writer's transaction is over.  held[p] has bit s set for each stripe
 * s of partition p already held on behalf of the same writer: such a stripe
 * is not counted twice, so fs_cache_release_held lowers every count once.
 */

/* Deletes the entries of the keys and holds their stripes. */
void
fs_cache_hold_keys(Oid dbid, int64 view_id, uint64 *hashes, int n, uint64 *held)
{
	int			i;

	if (cache == NULL || n == 0)
		return;
	sort_hashes(hashes, n);			/* partition order */
	for (i = 0; i < n;)
	{
		int			part = hash_part(hashes[i]);
		FsCachePart *p = &cache->parts[part];
		int			j;

		LWLockAcquire(p->lock, LW_EXCLUSIVE);
		for (j = i; j < n && hash_part(hashes[j]) == part; j++)
		{
			uint64		h = hashes[j];
			int			s = hash_stripe(h);
			uint32	   *link = &part_buckets(p)[hash_bucket(p, h)];

			if ((held[part] & (UINT64CONST(1) << s)) == 0)
			{
				held[part] |= UINT64CONST(1) << s;
				p->stripe_busy[s]++;
			}
			while (*link != 0)
			{
				FsCacheEntry *e = entry_at(p, *link - 1);

				if (e->hash == h && e->view_id == view_id && e->dbid == dbid)
					entry_delete(p, link, e);
				else
					link = &e->next;
			}
		}
		LWLockRelease(p->lock);
		i = j;
	}
}

/* Empties the whole cache and holds every stripe. */
void
fs_cache_hold_all(uint64 *held)
{
	int			i;
	int			s;

	if (cache == NULL)
		return;
	for (i = 0; i < FS_CACHE_PARTS; i++)
	{
		FsCachePart *p = &cache->parts[i];

		LWLockAcquire(p->lock, LW_EXCLUSIVE);
		memset(part_buckets(p), 0, (Size) p->nbuckets * sizeof(uint32));
		p->head = p->tail = p->used = 0;
		p->nentries = 0;
		p->live_bytes = 0;
		for (s = 0; s < FS_CACHE_STRIPES; s++)
			if ((held[i] & (UINT64CONST(1) << s)) == 0)
				p->stripe_busy[s]++;
		held[i] = ~UINT64CONST(0);
		LWLockRelease(p->lock);
	}
}

/* Releases the stripes marked in held, bumps their versions, clears held. */
void
fs_cache_release_held(uint64 *held)
{
	int			i;
	int			s;

	if (cache == NULL)
		return;
	for (i = 0; i < FS_CACHE_PARTS; i++)
	{
		FsCachePart *p = &cache->parts[i];

		if (held[i] == 0)
			continue;
		LWLockAcquire(p->lock, LW_EXCLUSIVE);
		for (s = 0; s < FS_CACHE_STRIPES; s++)
			if ((held[i] & (UINT64CONST(1) << s)) != 0)
			{
				Assert(p->stripe_busy[s] > 0);
				p->stripe_busy[s]--;
				p->stripe_version[s]++;
			}
		LWLockRelease(p->lock);
		held[i] = 0;
	}
}
