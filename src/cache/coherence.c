/*
 * coherence.c
 *		What a transaction changed, and what the cache learns at its end.
 *
 * Writers note each key whose online row they change (fs_write and
 * everything built on the apply engine) or a whole view (plain DML and
 * TRUNCATE through the online tables' statement trigger, very large
 * writes).  Until the transaction ends, this backend bypasses the cache
 * for those views, so it reads its own changes from the table.  At
 * pre-commit the notes are applied to the shared cache (cache.c deletes
 * the entries and holds the keys' stripes; a whole view gets a new
 * generation and is marked busy); at commit or abort the holds are
 * released.  PREPARE TRANSACTION is refused for a transaction that wrote
 * to a view while the cache is active: the cache could not learn when, and
 * by whom, it is finally committed.  Just before the local pre-commit work,
 * the notes are also written to the WAL for hot standbys (wal.c); this is
 * why changes are noted even without a cache here when wal_level is
 * replica or logical.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "cache/cache.h"
#include "cache/generation.h"
#include "keys/keys.h"
#include "stats/stats.h"

/* more changed keys than this in one transaction: invalidate the view */
#define FS_PENDING_KEY_LIMIT 20000

typedef struct PendingView
{
	int64		view_id;
	bool		whole;			/* invalidate every key of the view */
	bool		held;			/* whole-view invalidation begun */
	int			n;
	int			cap;
	uint64	   *hashes;			/* full hashes of changed keys */
} PendingView;

static MemoryContext pending_cxt = NULL;
static PendingView *pending = NULL;
static int	npending = 0;
static int	pending_cap = 0;
static bool callback_registered = false;

static void coherence_xact_callback(XactEvent event, void *arg);

static PendingView *
find_pending(int64 view_id)
{
	int			i;

	for (i = 0; i < npending; i++)
		if (pending[i].view_id == view_id)
			return &pending[i];
	return NULL;
}

static PendingView *
get_pending(int64 view_id)
{
	PendingView *pv = find_pending(view_id);

	if (pv)
		return pv;
	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopMemoryContext,
											"fstore pending invalidations",
											ALLOCSET_SMALL_SIZES);
	if (!callback_registered)
	{
		RegisterXactCallback(coherence_xact_callback, NULL);
		callback_registered = true;
	}
	if (npending == pending_cap)
	{
		pending_cap = Max(8, pending_cap * 2);
		pending = pending ?
			repalloc(pending, sizeof(PendingView) * pending_cap) :
			MemoryContextAlloc(pending_cxt, sizeof(PendingView) * pending_cap);
	}
	pv = &pending[npending++];
	memset(pv, 0, sizeof(PendingView));
	pv->view_id = view_id;
	return pv;
}

/*
 * Changes are noted while this server has a cache, and also whenever a
 * standby may replay them into its own (wal.c), even with no cache here.
 */
static bool
cache_tracking(void)
{
	return fs_cache_active() || fs_wal_wanted();
}

void
fs_cache_note_key(FsView *view, const Datum *keyvals)
{
	PendingView *pv;

	if (!cache_tracking())
		return;
	pv = get_pending(view->view_id);
	if (pv->whole)
		return;
	if (pv->n >= FS_PENDING_KEY_LIMIT)
	{
		pv->whole = true;
		pfree(pv->hashes);
		pv->hashes = NULL;
		pv->n = pv->cap = 0;
		return;
	}
	if (pv->n == pv->cap)
	{
		pv->cap = Max(64, pv->cap * 2);
		pv->hashes = pv->hashes ?
			repalloc(pv->hashes, sizeof(uint64) * pv->cap) :
			MemoryContextAlloc(pending_cxt, sizeof(uint64) * pv->cap);
	}
	pv->hashes[pv->n++] = fs_cache_full_hash(view, fs_key_hash(view, keyvals));
}

void
fs_cache_note_view(FsView *view)
{
	if (!cache_tracking())
		return;
	get_pending(view->view_id)->whole = true;
}

bool
fs_cache_view_dirty(FsView *view)
{
	return find_pending(view->view_id) != NULL;
}

static void
reset_pending(void)
{
	npending = 0;
	pending_cap = 0;
	pending = NULL;
	if (pending_cxt)
		MemoryContextReset(pending_cxt);
}

/* Releases everything pre-commit took; must not fail. */
static void
end_invalidations(void)
{
	int			i;

	fs_cache_end_invalidate();
	for (i = 0; i < npending; i++)
		if (pending[i].held)
			fs_viewgen_end_invalidate(pending[i].view_id);
	reset_pending();
}

/* Writes the pending invalidations to the WAL, for hot standbys. */
static void
log_invalidations(void)
{
	int64	   *view_ids;
	bool	   *whole;
	int		   *nhashes;
	uint64	  **hashes;
	int			i;

	if (npending == 0 || !fs_wal_wanted())
		return;
	view_ids = palloc(sizeof(int64) * npending);
	whole = palloc(sizeof(bool) * npending);
	nhashes = palloc(sizeof(int) * npending);
	hashes = palloc(sizeof(uint64 *) * npending);
	for (i = 0; i < npending; i++)
	{
		view_ids[i] = pending[i].view_id;
		whole[i] = pending[i].whole;
		nhashes[i] = pending[i].n;
		hashes[i] = pending[i].hashes;
	}
	fs_wal_log_invalidations(npending, view_ids, whole, nhashes, hashes);
	pfree(view_ids);
	pfree(whole);
	pfree(nhashes);
	pfree(hashes);
}

static void
coherence_xact_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			log_invalidations();
			for (i = 0; i < npending; i++)
			{
				PendingView *pv = &pending[i];

				if (pv->whole)
					pv->held = fs_viewgen_begin_invalidate(pv->view_id);
				else
					fs_cache_begin_invalidate(MyDatabaseId, pv->view_id,
											  pv->hashes, pv->n);
			}
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			end_invalidations();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (npending > 0 && fs_cache_active())
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has written to feature views"),
						 errdetail("The fstore hot cache is active and must learn when the changes commit.")));
			/* a standby holds the keys until COMMIT/ROLLBACK PREPARED */
			log_invalidations();
			break;
		case XACT_EVENT_PREPARE:
			end_invalidations();
			break;
		default:
			break;
	}
}
