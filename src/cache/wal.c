/*
 * wal.c
 *		Exact hot caches on hot standbys: the primary WAL-logs what its
 *		writers invalidate, and a standby's redo applies it to the standby's
 *		own cache.
 *
 * Records.  fstore registers a custom WAL resource manager (id 128,
 * RM_EXPERIMENTAL_ID, name "fstore"; it needs fstore in
 * shared_preload_libraries, on the primary and on every server that replays
 * its WAL).  At pre-commit (or pre-prepare) a transaction that changed
 * online rows, and has a transaction id, writes one record with its top
 * transaction id, its database, and per view either the full hashes of the
 * keys it changed or "the whole view".  The record precedes the commit
 * record in the WAL.  It is written whenever wal_level is replica or
 * logical, whether or not the primary's own cache is on: any standby may
 * use it.
 *
 * Redo (the startup process of a hot standby).  Applying a record mirrors
 * a writer's pre-commit on the primary: the keys' entries are deleted and
 * their stripes held (in-flight count raised), a whole view gets a new
 * generation and is marked busy.  The holds are remembered in a shared
 * table under the writer's transaction id and released, like a writer's
 * commit on the primary (counts lowered, stripe versions bumped, a whole
 * view given another generation), once that transaction is no longer in
 * progress in the standby's view (KnownAssignedXids): its commit or abort
 * record was replayed, or a running-transactions record showed it gone.
 * The startup process releases finished holds when it replays the next
 * record, readers when they start a lookup.  So a standby reader that read
 * a row with a snapshot older than the commit can never install it after
 * the invalidation was replayed: the stripe was busy, or its version
 * changed, between its lookup and its fill.  Releasing a hold needs a
 * reliable KnownAssignedXids, so the startup process releases holds only
 * once the standby snapshot is ready; readers exist only from then on.
 *
 * What redo cannot see.  A transaction may have written its record before
 * the checkpoint a standby starts replaying from, and commit after it.  So
 * at the start of redo every stripe is held, and the cache emptied, under
 * a "below" hold that is released once no transaction older than the
 * checkpoint's next transaction id is in progress (a reader's snapshot
 * xmin tells).  When the hold table is full, or a record names more whole
 * views than a slot holds, the record's invalidations are merged into the
 * same "below" hold (the cache is emptied when a whole view does not fit).
 * At the end of recovery (promotion, or the end of a point-in-time
 * recovery) every hold is released: transactions still in progress then
 * will never commit, and the cache stays valid for the new primary.
 *
 * With hot_standby = off, and during crash recovery, there are no readers
 * during redo and records are ignored.  fstore.debug_skip_standby_invalidation
 * makes redo ignore them too; it exists only for tests, which show that
 * without the records a standby serves stale rows.
 *
 * Lock order: the hold table's lock (tranche fstore_standby), then a cache
 * partition's or the view state lock, or ProcArrayLock (reading
 * KnownAssignedXids); never the reverse.
 */
#include "postgres.h"

#include "access/rmgr.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "cache/cache.h"
#include "cache/generation.h"
#include "stats/stats.h"

#define FS_RMGR_ID			RM_EXPERIMENTAL_ID	/* 128 */
#define XLOG_FS_INVALIDATE	0x00

#define FS_INVAL_WHOLE		0x01

/* the record: a header, then per view a header and its key hashes */
typedef struct xl_fs_invalidate
{
	TransactionId xid;			/* top transaction id of the writer */
	Oid			dbid;
	uint32		nviews;
	uint32		pad;
} xl_fs_invalidate;

typedef struct xl_fs_inval_view
{
	int64		view_id;
	uint32		flags;			/* FS_INVAL_WHOLE */
	uint32		nhashes;		/* full hashes (uint64) that follow */
} xl_fs_inval_view;

#define FS_HOLD_SLOTS		256
#define FS_HOLD_VIEWS		8

typedef struct FsHoldView
{
	int64		view_id;
	Oid			dbid;
} FsHoldView;

/* what redo holds on behalf of one writer of the primary */
typedef struct FsHold
{
	TransactionId xid;			/* InvalidTransactionId: slot free */
	int			nviews;
	FsHoldView	views[FS_HOLD_VIEWS];
	uint64		stripes[FS_CACHE_STRIPE_WORDS];
} FsHold;

typedef struct FsStandbyShared
{
	LWLock	   *lock;
	pg_atomic_uint32 nholds;	/* holds in use, "below" included */
	bool		below_active;
	TransactionId below_xid;	/* released once no older xid runs */
	FsHold		below;			/* stripes only */
	FsHold		slots[FS_HOLD_SLOTS];
} FsStandbyShared;

static FsStandbyShared *standby = NULL;
static bool rmgr_registered = false;
static bool fs_debug_skip_standby_invalidation = false;

static void fs_rmgr_redo(XLogReaderState *record);
static void fs_rmgr_desc(StringInfo buf, XLogReaderState *record);
static const char *fs_rmgr_identify(uint8 info);
static void fs_rmgr_startup(void);
static void fs_rmgr_cleanup(void);

static RmgrData fs_rmgr = {
	.rm_name = "fstore",
	.rm_redo = fs_rmgr_redo,
	.rm_desc = fs_rmgr_desc,
	.rm_identify = fs_rmgr_identify,
	.rm_startup = fs_rmgr_startup,
	.rm_cleanup = fs_rmgr_cleanup,
	.rm_mask = NULL,
	.rm_decode = NULL
};

void
fs_wal_init(void)
{
	DefineCustomBoolVariable("fstore.debug_skip_standby_invalidation",
							 "For tests only: a standby's redo ignores fstore's cache invalidation records.",
							 "A standby with this on serves stale rows from its cache.",
							 &fs_debug_skip_standby_invalidation,
							 false,
							 PGC_SUSET, GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL,
							 NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
	{
		RegisterCustomRmgr(FS_RMGR_ID, &fs_rmgr);
		rmgr_registered = true;
	}
}

Size
fs_wal_shmem_size(void)
{
	if (fs_cache_size_kb <= 0)
		return 0;
	return MAXALIGN(sizeof(FsStandbyShared));
}

void
fs_wal_shmem_startup(void)
{
	bool		found;

	if (fs_cache_size_kb <= 0)
		return;
	standby = ShmemInitStruct("fstore standby holds", sizeof(FsStandbyShared), &found);
	if (found)
		return;
	memset(standby, 0, sizeof(FsStandbyShared));
	standby->lock = &(GetNamedLWLockTranche("fstore_standby"))->lock;
	pg_atomic_init_u32(&standby->nholds, 0);
}

/* ---- primary: writing the records ---- */

/* Whether writers must note and log their changes for standbys. */
bool
fs_wal_wanted(void)
{
	return rmgr_registered && XLogStandbyInfoActive();
}

/*
 * Logs what the committing (or preparing) transaction invalidates; called
 * at pre-commit.  Nothing is logged without a transaction id: such a
 * transaction changed no row.
 */
void
fs_wal_log_invalidations(int nviews, const int64 *view_ids, const bool *whole,
						 const int *nhashes, uint64 *const *hashes)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	xl_fs_invalidate hdr;
	StringInfoData buf;
	int			i;

	if (nviews == 0 || !fs_wal_wanted() || !TransactionIdIsValid(xid))
		return;
	memset(&hdr, 0, sizeof(hdr));
	hdr.xid = xid;
	hdr.dbid = MyDatabaseId;
	hdr.nviews = nviews;
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &hdr, sizeof(hdr));
	for (i = 0; i < nviews; i++)
	{
		xl_fs_inval_view v;

		memset(&v, 0, sizeof(v));
		v.view_id = view_ids[i];
		v.flags = whole[i] ? FS_INVAL_WHOLE : 0;
		v.nhashes = whole[i] ? 0 : nhashes[i];
		appendBinaryStringInfo(&buf, (char *) &v, sizeof(v));
		if (v.nhashes > 0)
			appendBinaryStringInfo(&buf, (char *) hashes[i], sizeof(uint64) * v.nhashes);
	}
	XLogBeginInsert();
	XLogRegisterData(buf.data, buf.len);
	(void) XLogInsert(FS_RMGR_ID, XLOG_FS_INVALIDATE);
	pfree(buf.data);
}

/* ---- standby: holds ---- */

static void
hold_release(FsHold *h)
{
	int			i;

	fs_cache_release_held(h->stripes);
	for (i = 0; i < h->nviews; i++)
		fs_viewgen_end_invalidate_db(h->views[i].dbid, h->views[i].view_id);
	h->nviews = 0;
	h->xid = InvalidTransactionId;
	pg_atomic_fetch_sub_u32(&standby->nholds, 1);
}

static void
below_release(void)
{
	fs_cache_release_held(standby->below.stripes);
	standby->below_active = false;
	standby->below_xid = InvalidTransactionId;
	pg_atomic_fetch_sub_u32(&standby->nholds, 1);
}

/* Makes the "below" hold cover transactions up to xid; the lock is held. */
static FsHold *
below_extend(TransactionId xid)
{
	TransactionId next = xid;

	TransactionIdAdvance(next);
	if (!standby->below_active)
	{
		standby->below_active = true;
		standby->below_xid = next;
		pg_atomic_fetch_add_u32(&standby->nholds, 1);
	}
	else if (TransactionIdPrecedes(standby->below_xid, next))
		standby->below_xid = next;
	return &standby->below;
}

/*
 * Releases the holds of transactions that are over; the lock is held
 * exclusively.  xmin, when valid, is a snapshot's xmin taken by the caller:
 * no transaction older than it is in progress, so "below" can go if it is
 * not newer.
 */
static void
sweep(TransactionId xmin)
{
	int			i;

	for (i = 0; i < FS_HOLD_SLOTS; i++)
	{
		FsHold	   *h = &standby->slots[i];

		if (TransactionIdIsValid(h->xid) && !TransactionIdIsInProgress(h->xid))
			hold_release(h);
	}
	if (standby->below_active && TransactionIdIsValid(xmin) &&
		TransactionIdFollowsOrEquals(xmin, standby->below_xid))
		below_release();
}

static void
release_all(void)
{
	int			i;

	for (i = 0; i < FS_HOLD_SLOTS; i++)
		if (TransactionIdIsValid(standby->slots[i].xid))
			hold_release(&standby->slots[i]);
	if (standby->below_active)
		below_release();
}

/*
 * A reader on a hot standby, before a lookup: releases the holds of
 * transactions that are over, so that their keys can be filled again.
 * The cache is always usable; holds only keep fills out.
 */
bool
fs_standby_reader_ready(void)
{
	TransactionId xmin = InvalidTransactionId;

	if (standby == NULL || pg_atomic_read_u32(&standby->nholds) == 0)
		return true;
	if (standby->below_active)
		xmin = GetLatestSnapshot()->xmin;	/* a hint; rechecked under lock */
	if (LWLockConditionalAcquire(standby->lock, LW_EXCLUSIVE))
	{
		sweep(xmin);
		LWLockRelease(standby->lock);
	}
	return true;
}

/* ---- standby: redo ---- */

static FsHold *
hold_slot(TransactionId xid)
{
	FsHold	   *free_slot = NULL;
	int			i;

	for (i = 0; i < FS_HOLD_SLOTS; i++)
	{
		FsHold	   *h = &standby->slots[i];

		if (TransactionIdEquals(h->xid, xid))
			return h;
		if (free_slot == NULL && !TransactionIdIsValid(h->xid))
			free_slot = h;
	}
	if (free_slot != NULL)
	{
		memset(free_slot, 0, sizeof(FsHold));
		free_slot->xid = xid;
		pg_atomic_fetch_add_u32(&standby->nholds, 1);
	}
	return free_slot;
}

static void
fs_rmgr_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	char	   *data = XLogRecGetData(record);
	Size		len = XLogRecGetDataLen(record);
	xl_fs_invalidate hdr;
	FsHold	   *h;
	Size		pos;
	uint32		i;

	if (info != XLOG_FS_INVALIDATE)
		elog(PANIC, "fstore redo: unknown op code %u", info);
	if (len < sizeof(hdr))
		elog(PANIC, "fstore redo: record too short");
	memcpy(&hdr, data, sizeof(hdr));

	/* no cache, or no reader can run during this recovery */
	if (standby == NULL || !fs_cache_active() || standbyState == STANDBY_DISABLED ||
		fs_debug_skip_standby_invalidation)
		return;

	LWLockAcquire(standby->lock, LW_EXCLUSIVE);

	/* KnownAssignedXids can be trusted only once the snapshot is ready */
	if (standbyState == STANDBY_SNAPSHOT_READY)
		sweep(InvalidTransactionId);

	h = hold_slot(hdr.xid);
	if (h == NULL)
		h = below_extend(hdr.xid);

	pos = sizeof(hdr);
	for (i = 0; i < hdr.nviews; i++)
	{
		xl_fs_inval_view v;

		if (len - pos < sizeof(v))
			elog(PANIC, "fstore redo: record too short");
		memcpy(&v, data + pos, sizeof(v));
		pos += sizeof(v);
		if (v.flags & FS_INVAL_WHOLE)
		{
			if (h != &standby->below && h->nviews < FS_HOLD_VIEWS &&
				fs_viewgen_begin_invalidate_db(hdr.dbid, v.view_id))
			{
				h->views[h->nviews].dbid = hdr.dbid;
				h->views[h->nviews].view_id = v.view_id;
				h->nviews++;
			}
			else
			{
				/* no room to remember the view: empty the whole cache */
				fs_cache_hold_all(below_extend(hdr.xid)->stripes);
			}
		}
		else if (v.nhashes > 0)
		{
			uint64	   *hashes;

			if ((len - pos) / sizeof(uint64) < v.nhashes)
				elog(PANIC, "fstore redo: record too short");
			hashes = palloc(sizeof(uint64) * v.nhashes);
			memcpy(hashes, data + pos, sizeof(uint64) * v.nhashes);
			pos += sizeof(uint64) * v.nhashes;
			fs_cache_hold_keys(hdr.dbid, v.view_id, hashes, v.nhashes, h->stripes);
			pfree(hashes);
		}
	}

	LWLockRelease(standby->lock);
}

/*
 * Start of redo: a transaction that logged its record before the point
 * redo starts from may commit after it.  Until no transaction older than
 * the checkpoint's next transaction id runs, nothing is filled.
 */
static void
fs_rmgr_startup(void)
{
	TransactionId next;

	if (standby == NULL || !fs_cache_active())
		return;
	next = XidFromFullTransactionId(ReadNextFullTransactionId());
	LWLockAcquire(standby->lock, LW_EXCLUSIVE);
	if (!standby->below_active)
	{
		standby->below_active = true;
		pg_atomic_fetch_add_u32(&standby->nholds, 1);
		standby->below_xid = next;
	}
	else if (TransactionIdPrecedes(standby->below_xid, next))
		standby->below_xid = next;
	fs_cache_hold_all(standby->below.stripes);
	LWLockRelease(standby->lock);
}

/*
 * End of redo: transactions still in progress will never commit, so every
 * hold goes; the cache is valid for the server once it leaves recovery.
 */
static void
fs_rmgr_cleanup(void)
{
	if (standby == NULL || !fs_cache_active())
		return;
	LWLockAcquire(standby->lock, LW_EXCLUSIVE);
	release_all();
	LWLockRelease(standby->lock);
}

static void
fs_rmgr_desc(StringInfo buf, XLogReaderState *record)
{
	char	   *data = XLogRecGetData(record);
	Size		len = XLogRecGetDataLen(record);
	xl_fs_invalidate hdr;
	Size		pos;
	uint32		i;

	if ((XLogRecGetInfo(record) & ~XLR_INFO_MASK) != XLOG_FS_INVALIDATE ||
		len < sizeof(hdr))
		return;
	memcpy(&hdr, data, sizeof(hdr));
	appendStringInfo(buf, "xid %u db %u views %u", hdr.xid, hdr.dbid, hdr.nviews);
	pos = sizeof(hdr);
	for (i = 0; i < hdr.nviews && len - pos >= sizeof(xl_fs_inval_view); i++)
	{
		xl_fs_inval_view v;

		memcpy(&v, data + pos, sizeof(v));
		pos += sizeof(v) + sizeof(uint64) * (Size) v.nhashes;
		if (v.flags & FS_INVAL_WHOLE)
			appendStringInfo(buf, "; view %lld: all keys", (long long) v.view_id);
		else
			appendStringInfo(buf, "; view %lld: %u keys", (long long) v.view_id, v.nhashes);
		if (pos > len)
			break;
	}
}

static const char *
fs_rmgr_identify(uint8 info)
{
	if ((info & ~XLR_INFO_MASK) == XLOG_FS_INVALIDATE)
		return "INVALIDATE";
	return NULL;
}
