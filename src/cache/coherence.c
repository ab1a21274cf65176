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
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "cache/cache.h"
#include "cache/generation.h"
#include "keys/keys.h"
#include "stats/stats.h"

/* more changed keys than this in one transaction: invalidate the view */
#define FS_PENDING_KEY_LIMIT 20000

typedef struct PendingView
{
	int64		view_id;		/* hash key */
	bool		whole;			/* invalidate every key of the view */
	bool		held;			/* whole-view invalidation begun */
	int			n;
	int			cap;
	uint64	   *hashes;			/* full hashes of changed keys */
} PendingView;

/*
 * The views this transaction changed, in a backend-local dynahash keyed by
 * view_id that lives in pending_cxt (NULL until the first note).
 */
static MemoryContext pending_cxt = NULL;
static HTAB *pending = NULL;
static int	npending = 0;
static bool callback_registered = false;

static void coherence_xact_callback(XactEvent event, void *arg);

static PendingView *
find_pending(int64 view_id)
{
	if (npending == 0)
		return NULL;
	return hash_search(pending, &view_id, HASH_FIND, NULL);
}

static PendingView *
get_pending(int64 view_id)
{
	PendingView *pv;
	bool		found;

	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopMemoryContext,
											"fstore pending invalidations",
											ALLOCSET_SMALL_SIZES);
	if (!callback_registered)
	{
		RegisterXactCallback(coherence_xact_callback, NULL);
		callback_registered = true;
	}
	if (pending == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(PendingView);
		ctl.hcxt = pending_cxt;
		pending = hash_create("fstore pending invalidations", 8, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	pv = hash_search(pending, &view_id, HASH_ENTER, &found);
	if (!found)
	{
		memset(pv, 0, sizeof(PendingView));
		pv->view_id = view_id;
		npending++;
	}
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
	pending = NULL;				/* freed with the context */
	if (pending_cxt)
		MemoryContextReset(pending_cxt);
}

/* Releases everything pre-commit took; must not fail. */
static void
end_invalidations(void)
{
	HASH_SEQ_STATUS seq;
	PendingView *pv;

	fs_cache_end_invalidate();
	if (npending > 0)
	{
		hash_seq_init(&seq, pending);
		while ((pv = hash_seq_search(&seq)) != NULL)
			if (pv->held)
				fs_viewgen_end_invalidate(pv->view_id);
	}
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
	HASH_SEQ_STATUS seq;
	PendingView *pv;
	int			i = 0;

	if (npending == 0 || !fs_wal_wanted())
		return;
	view_ids = palloc(sizeof(int64) * npending);
	whole = palloc(sizeof(bool) * npending);
	nhashes = palloc(sizeof(int) * npending);
	hashes = palloc(sizeof(uint64 *) * npending);
	hash_seq_init(&seq, pending);
	while ((pv = hash_seq_search(&seq)) != NULL)
	{
		view_ids[i] = pv->view_id;
		whole[i] = pv->whole;
		nhashes[i] = pv->n;
		hashes[i] = pv->hashes;
		i++;
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
	HASH_SEQ_STATUS seq;
	PendingView *pv;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			log_invalidations();
			if (npending == 0)
				break;
			hash_seq_init(&seq, pending);
			while ((pv = hash_seq_search(&seq)) != NULL)
			{
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
