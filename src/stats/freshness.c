/*
 * freshness.c
 *		What the writers of each view last did, for fstore.freshness: the
 *		newest event_ts applied and the time of the last write.
 *
 * Every apply of a feature view (fs_write, fs_write_query, stream batches,
 * fs_materialize) and every write of an aggregation view notes them here.
 * A note costs a lookup in backend memory: the notes of a transaction are
 * kept per view and subtransaction level (an aborted subtransaction's go
 * with it) and published at commit to a per-view table in shared memory
 * (util/viewtable.c), which fstore.freshness reads through
 * fstore._freshness().  A transaction that noted a view pins the view's
 * shared entry until it ends, so the entry is there to publish into.
 *
 * The tables fstore.view_state and fstore.aggregation_state keep the state
 * across restarts and show it on standbys.  They are written about once a
 * second per view, however many small batches arrive: a writer writes the
 * row in its own transaction when nobody set out to do so in the last
 * second (a compare-and-swap on the entry's "claimed" time picks one), and
 * the stream worker of the database writes, when it has nothing else to
 * do, what committed without being written (skipping a row another
 * transaction holds: it never waits).  Writers in REPEATABLE READ or
 * SERIALIZABLE transactions leave the row to the worker (see
 * fs_freshness_note).  What the shared entry holds beyond
 * the row is thus at most about a second of writes, plus, in a database
 * where no stream worker runs, the writes since the last one that wrote
 * the row; a restart loses that part, so fstore.freshness may then show a
 * view as older (staler) than it is until its next write, never as newer.
 * A standby shows the rows.
 *
 * Publishing happens after the commit is visible: a reader may see a
 * view's new rows a moment before fstore.freshness shows the write.
 * PREPARE TRANSACTION writes the rows of the transaction's views at once
 * (the state then arrives with COMMIT PREPARED).  Without
 * shared_preload_libraries there is no shared memory, and the SQL of
 * fstore 0.1 (before ALTER EXTENSION fstore UPDATE) reads only the rows:
 * then every note writes the row, as every write did in 0.1.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog/metadata.h"
#include "stats/freshness.h"
#include "util/util.h"
#include "util/viewtable.h"

PG_FUNCTION_INFO_V1(fs_freshness);

/* a view's row is written at most about this often */
#define PERSIST_INTERVAL_US		((int64) 1000 * 1000)

/* "no time": DT_NOBEGIN, below every finite timestamp */
#define TS_NONE		DT_NOBEGIN

typedef struct FsFreshEntry
{
	FsViewEntry hdr;			/* key and last use (util/viewtable.h) */
	/* TimestampTz values, as the bits of an int64 */
	pg_atomic_uint64 last_event_ts; /* committed; TS_NONE: none yet */
	pg_atomic_uint64 last_write_at; /* committed; TS_NONE: none yet */
	pg_atomic_uint64 persisted; /* the last_write_at the row holds */
	pg_atomic_uint64 claimed;	/* when someone last set out to write it */
	pg_atomic_uint32 pending;	/* transactions in progress that noted it */
	pg_atomic_uint32 aggregation;	/* 1: an aggregation view */
} FsFreshEntry;

static inline TimestampTz
ts_read(pg_atomic_uint64 *a)
{
	return (TimestampTz) pg_atomic_read_u64(a);
}

/* raises *a to v, if v is later */
static void
ts_advance(pg_atomic_uint64 *a, TimestampTz v)
{
	uint64		old = pg_atomic_read_u64(a);

	while ((TimestampTz) old < v &&
		   !pg_atomic_compare_exchange_u64(a, &old, (uint64) v))
		;
}

static bool
entry_dirty(FsFreshEntry *e)
{
	return ts_read(&e->last_write_at) > ts_read(&e->persisted);
}

static void
init_entry(FsViewEntry *ve)
{
	FsFreshEntry *e = (FsFreshEntry *) ve;

	pg_atomic_init_u64(&e->last_event_ts, (uint64) TS_NONE);
	pg_atomic_init_u64(&e->last_write_at, (uint64) TS_NONE);
	pg_atomic_init_u64(&e->persisted, (uint64) TS_NONE);
	pg_atomic_init_u64(&e->claimed, 0);
	pg_atomic_init_u32(&e->pending, 0);
	pg_atomic_init_u32(&e->aggregation, 0);
}

/* an entry goes only when it holds nothing the row lacks */
static bool
may_evict(FsViewEntry *ve)
{
	FsFreshEntry *e = (FsFreshEntry *) ve;

	return pg_atomic_read_u32(&e->pending) == 0 && !entry_dirty(e);
}

static FsViewTable fresh = {
	.name = "fstore freshness hash",
	.tranche = "fstore_freshness",
	.entrysize = sizeof(FsFreshEntry),
	.init_entry = init_entry,
	.may_evict = may_evict,
	.full_detail = "It holds fstore.max_feature_views = %d views across all databases; writes of the views beyond that update fstore.view_state at once.",
};

/*
 * Claims the right to write the entry's row now: true when nobody set out
 * to in the last PERSIST_INTERVAL_US.
 */
static bool
claim(FsFreshEntry *e, TimestampTz now)
{
	uint64		old = pg_atomic_read_u64(&e->claimed);

	if (now - (TimestampTz) old < PERSIST_INTERVAL_US)
		return false;
	return pg_atomic_compare_exchange_u64(&e->claimed, &old, (uint64) now);
}

/* ---- this backend's notes ---- */

typedef struct NoteKey
{
	int64		view_id;
	int32		level;			/* transaction nesting level */
	int32		zero;			/* always 0: hashed as bytes */
} NoteKey;

typedef struct Note
{
	NoteKey		key;			/* hash key */
	bool		aggregation;
	TimestampTz max_ts;			/* newest event_ts written; TS_NONE: none */
	TimestampTz write_at;		/* time of the write; TS_NONE: none */
	TimestampTz persisted;		/* last_write_at this level wrote to the
								 * row; TS_NONE: nothing */
} Note;

typedef struct Pin
{
	int64		view_id;		/* hash key */
	bool		pinned;			/* the entry's pending counts us */
} Pin;

static HTAB *notes = NULL;		/* in TopMemoryContext, emptied at xact end */
static HTAB *pins = NULL;
static int	npins = 0;
static bool callbacks_registered = false;

static void freshness_xact_callback(XactEvent event, void *arg);
static void freshness_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
									   SubTransactionId parentSubid, void *arg);

static HTAB *
local_hash(const char *name, Size keysize, Size entrysize)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = TopMemoryContext;
	return hash_create(name, 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static void
local_init(void)
{
	if (notes != NULL)
		return;
	notes = local_hash("fstore freshness notes", sizeof(NoteKey), sizeof(Note));
	pins = local_hash("fstore freshness pins", sizeof(int64), sizeof(Pin));
	if (!callbacks_registered)
	{
		RegisterXactCallback(freshness_xact_callback, NULL);
		RegisterSubXactCallback(freshness_subxact_callback, NULL);
		callbacks_registered = true;
	}
}

static NoteKey
note_key(int64 view_id, int level)
{
	NoteKey		key;

	key.view_id = view_id;
	key.level = level;
	key.zero = 0;
	return key;
}

static Note *
note_enter(int64 view_id, bool aggregation, int level)
{
	NoteKey		key = note_key(view_id, level);
	Note	   *n;
	bool		found;

	n = hash_search(notes, &key, HASH_ENTER, &found);
	if (!found)
	{
		n->aggregation = aggregation;
		n->max_ts = TS_NONE;
		n->write_at = TS_NONE;
		n->persisted = TS_NONE;
	}
	return n;
}

/* the newest event_ts this transaction noted for the view, at any level */
static TimestampTz
noted_max_ts(int64 view_id)
{
	int			top = GetCurrentTransactionNestLevel();
	TimestampTz ts = TS_NONE;
	int			level;

	for (level = 1; level <= top; level++)
	{
		NoteKey		key = note_key(view_id, level);
		Note	   *n = hash_search(notes, &key, HASH_FIND, NULL);

		if (n != NULL && n->max_ts > ts)
			ts = n->max_ts;
	}
	return ts;
}

/*
 * Pins the view's shared entry for this transaction (creating it): false
 * when the table has no room.
 */
static bool
pin(int64 view_id, bool aggregation)
{
	Pin		   *p;
	bool		found;
	FsFreshEntry *e;

	p = hash_search(pins, &view_id, HASH_ENTER, &found);
	if (found && p->pinned)
		return true;
	p->pinned = false;
	e = (FsFreshEntry *) fs_viewtable_enter(&fresh, MyDatabaseId, view_id);
	if (e == NULL)
		return false;
	pg_atomic_fetch_add_u32(&e->pending, 1);
	pg_atomic_write_u32(&e->aggregation, aggregation ? 1 : 0);
	LWLockRelease(fresh.lock);
	p->pinned = true;
	npins++;
	return true;
}

static void
unpin_all(void)
{
	HASH_SEQ_STATUS seq;
	Pin		   *p;

	if (npins == 0)
		return;
	hash_seq_init(&seq, pins);
	while ((p = hash_seq_search(&seq)) != NULL)
	{
		if (p->pinned)
		{
			FsFreshEntry *e = (FsFreshEntry *)
				fs_viewtable_find(&fresh, MyDatabaseId, p->view_id);

			if (e != NULL)
			{
				pg_atomic_fetch_sub_u32(&e->pending, 1);
				LWLockRelease(fresh.lock);
			}
		}
		hash_search(pins, &p->view_id, HASH_REMOVE, NULL);
	}
	npins = 0;
}

static void
forget_notes(void)
{
	HASH_SEQ_STATUS seq;
	Note	   *n;

	if (notes == NULL)
		return;
	hash_seq_init(&seq, notes);
	while ((n = hash_seq_search(&seq)) != NULL)
		hash_search(notes, &n->key, HASH_REMOVE, NULL);
}

/* ---- the rows ---- */

static const char *const upsert_sql[2] = {
	"INSERT INTO fstore.view_state AS s (view_id, last_event_ts, last_write_at)"
	" VALUES ($1, $2, $3) ON CONFLICT (view_id) DO UPDATE"
	" SET last_event_ts = GREATEST(s.last_event_ts, excluded.last_event_ts),"
	"     last_write_at = GREATEST(s.last_write_at, excluded.last_write_at)",
	"INSERT INTO fstore.aggregation_state AS s (view_id, last_event_ts, last_write_at)"
	" VALUES ($1, $2, $3) ON CONFLICT (view_id) DO UPDATE"
	" SET last_event_ts = GREATEST(s.last_event_ts, excluded.last_event_ts),"
	"     last_write_at = GREATEST(s.last_write_at, excluded.last_write_at)"
};

/* the worker's: leaves a row another transaction holds alone */
static const char *const update_sql[2] = {
	"WITH l AS (SELECT view_id FROM fstore.view_state"
	"            WHERE view_id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED)"
	" UPDATE fstore.view_state s"
	"    SET last_event_ts = GREATEST(s.last_event_ts, $2),"
	"        last_write_at = GREATEST(s.last_write_at, $3)"
	"   FROM l WHERE s.view_id OPERATOR(pg_catalog.=) l.view_id",
	"WITH l AS (SELECT view_id FROM fstore.aggregation_state"
	"            WHERE view_id OPERATOR(pg_catalog.=) $1 FOR UPDATE SKIP LOCKED)"
	" UPDATE fstore.aggregation_state s"
	"    SET last_event_ts = GREATEST(s.last_event_ts, $2),"
	"        last_write_at = GREATEST(s.last_write_at, $3)"
	"   FROM l WHERE s.view_id OPERATOR(pg_catalog.=) l.view_id"
};

static const char *const exists_sql[2] = {
	"SELECT 1 FROM fstore.view_state WHERE view_id OPERATOR(pg_catalog.=) $1",
	"SELECT 1 FROM fstore.aggregation_state WHERE view_id OPERATOR(pg_catalog.=) $1"
};

/*
 * Writes the view's row (as the owner of fstore's tables: the writer needs
 * no privilege on them).  skip_locked: the worker's way; false if the row
 * is held by another transaction (nothing written).
 */
static bool
persist(int64 view_id, bool aggregation, TimestampTz max_ts,
		TimestampTz write_at, bool skip_locked)
{
	Oid			types[3] = {INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[3];
	int			t = aggregation ? 1 : 0;

	values[0] = Int64GetDatum(view_id);
	values[1] = TimestampTzGetDatum(max_ts);
	values[2] = TimestampTzGetDatum(write_at);
	if (!skip_locked)
	{
		fs_catalog_exec_as_owner(upsert_sql[t], 3, types, values, SPI_OK_INSERT);
		return true;
	}
	if (fs_catalog_exec_as_owner(update_sql[t], 3, types, values, SPI_OK_UPDATE) > 0)
		return true;
	/* no row: the view is gone, or was never written; nothing to keep */
	return fs_catalog_exec_as_owner(exists_sql[t], 1, types, values, SPI_OK_SELECT) == 0;
}

/* ---- writers ---- */

/*
 * Whether the extension's SQL reads the shared state: fstore.freshness of
 * 0.1 (a library updated before ALTER EXTENSION fstore UPDATE) reads the
 * rows only, so they are written at every write, as 0.1 did.  The tables
 * of aggregation views came with the function that reads shared memory.
 */
static bool
sql_reads_shared_state(void)
{
	Oid			nsp = get_namespace_oid("fstore", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("aggregation_state", nsp));
}

void
fs_freshness_note(int64 view_id, bool aggregation, TimestampTz max_ts)
{
	TimestampTz now = GetCurrentTimestamp();
	FsFreshEntry *e;
	Note	   *n;
	TimestampTz ev;
	bool		due;

	if (!fs_preloaded() || !sql_reads_shared_state())
	{
		persist(view_id, aggregation, max_ts, now, false);
		return;
	}
	local_init();
	if (!pin(view_id, aggregation))
	{
		persist(view_id, aggregation, max_ts, now, false);
		return;
	}
	n = note_enter(view_id, aggregation, GetCurrentTransactionNestLevel());
	if (max_ts > n->max_ts)
		n->max_ts = max_ts;
	if (now > n->write_at)
		n->write_at = now;

	e = (FsFreshEntry *) fs_viewtable_find(&fresh, MyDatabaseId, view_id);
	if (e == NULL)				/* cannot be: pinned */
		elog(ERROR, "fstore freshness entry of view " INT64_FORMAT " vanished", view_id);
	/*
	 * Not in REPEATABLE READ or SERIALIZABLE: a row the worker wrote after
	 * the transaction's snapshot would make the upsert fail to serialize,
	 * an error of fstore's bookkeeping, not of the caller's data.
	 */
	due = !IsolationUsesXactSnapshot() && claim(e, now);
	ev = Max(ts_read(&e->last_event_ts), noted_max_ts(view_id));
	LWLockRelease(fresh.lock);

	if (due)
	{
		persist(view_id, aggregation, ev, now, false);
		n->persisted = now;
	}
}

/* ---- the stream worker ---- */

typedef struct FlushItem
{
	int64		view_id;
	bool		aggregation;
	TimestampTz max_ts;
	TimestampTz write_at;
} FlushItem;

/* an entry of this database the worker should write the row of */
static bool
flush_due(FsFreshEntry *e, TimestampTz now)
{
	return e->hdr.key.dbid == MyDatabaseId && entry_dirty(e) &&
		now - ts_read(&e->claimed) >= PERSIST_INTERVAL_US;
}

bool
fs_freshness_flush_wanted(void)
{
	HASH_SEQ_STATUS seq;
	FsFreshEntry *e;
	TimestampTz now = GetCurrentTimestamp();
	bool		wanted = false;

	if (!fs_preloaded())
		return false;
	LWLockAcquire(fresh.lock, LW_SHARED);
	hash_seq_init(&seq, fresh.hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (flush_due(e, now))
		{
			wanted = true;
			hash_seq_term(&seq);
			break;
		}
	LWLockRelease(fresh.lock);
	return wanted;
}

void
fs_freshness_flush(void)
{
	HASH_SEQ_STATUS seq;
	FsFreshEntry *e;
	FlushItem  *items;
	int			nitems = 0;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	if (!fs_preloaded())
		return;
	local_init();

	/*
	 * What committed unwritten and is due (a writer still in progress
	 * publishes its own notes at commit; a row it holds is skipped).
	 */
	items = palloc(sizeof(FlushItem) * fs_max_feature_views);
	LWLockAcquire(fresh.lock, LW_SHARED);
	hash_seq_init(&seq, fresh.hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (nitems >= fs_max_feature_views || !flush_due(e, now) ||
			!claim(e, now))
			continue;
		items[nitems].view_id = e->hdr.key.view_id;
		items[nitems].aggregation = pg_atomic_read_u32(&e->aggregation) != 0;
		items[nitems].max_ts = ts_read(&e->last_event_ts);
		items[nitems].write_at = ts_read(&e->last_write_at);
		nitems++;
	}
	LWLockRelease(fresh.lock);

	for (i = 0; i < nitems; i++)
	{
		FlushItem  *it = &items[i];

		CHECK_FOR_INTERRUPTS();
		if (!pin(it->view_id, it->aggregation))
			continue;
		if (persist(it->view_id, it->aggregation, it->max_ts, it->write_at, true))
		{
			Note	   *n = note_enter(it->view_id, it->aggregation,
									   GetCurrentTransactionNestLevel());

			n->persisted = Max(n->persisted, it->write_at);
		}
	}
	pfree(items);
}

void
fs_freshness_forget(int64 view_id)
{
	FsFreshEntry *e;

	if (!fs_preloaded())
		return;
	/* the view is gone: what its row lacks does not matter any more */
	e = (FsFreshEntry *) fs_viewtable_find(&fresh, MyDatabaseId, view_id);
	if (e == NULL)
		return;
	ts_advance(&e->persisted, ts_read(&e->last_write_at));
	LWLockRelease(fresh.lock);
	fs_viewtable_remove(&fresh, MyDatabaseId, view_id);
}

Size
fs_freshness_shmem_size(void)
{
	return fs_viewtable_shmem_size(&fresh);
}

void
fs_freshness_shmem_startup(void)
{
	fs_viewtable_shmem_startup(&fresh);
}

/*
 * fstore._freshness(): the committed state of this database's views that
 * shared memory holds (fstore.freshness takes the later of it and the
 * tables' rows).
 */
Datum
fs_freshness(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	FsFreshEntry *e;

	InitMaterializedSRF(fcinfo, 0);
	if (!fs_preloaded())
		return (Datum) 0;

	LWLockAcquire(fresh.lock, LW_SHARED);
	hash_seq_init(&seq, fresh.hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[3];
		bool		nulls[3] = {false};
		TimestampTz ev = ts_read(&e->last_event_ts);
		TimestampTz wa = ts_read(&e->last_write_at);

		if (e->hdr.key.dbid != MyDatabaseId || wa == TS_NONE)
			continue;
		values[0] = Int64GetDatum(e->hdr.key.view_id);
		values[1] = TimestampTzGetDatum(ev);
		nulls[1] = (ev == TS_NONE);
		values[2] = TimestampTzGetDatum(wa);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(fresh.lock);
	return (Datum) 0;
}

/* ---- transaction ends ---- */

/* at commit: the notes go to the shared entries */
static void
publish(void)
{
	HASH_SEQ_STATUS seq;
	Note	   *n;

	hash_seq_init(&seq, notes);
	while ((n = hash_seq_search(&seq)) != NULL)
	{
		FsFreshEntry *e = (FsFreshEntry *)
			fs_viewtable_find(&fresh, MyDatabaseId, n->key.view_id);

		if (e == NULL)
			continue;			/* not pinned: written already */
		if (n->max_ts != TS_NONE)
			ts_advance(&e->last_event_ts, n->max_ts);
		if (n->write_at != TS_NONE)
			ts_advance(&e->last_write_at, n->write_at);
		if (n->persisted != TS_NONE)
			ts_advance(&e->persisted, n->persisted);
		LWLockRelease(fresh.lock);
	}
}

/* before PREPARE: the rows of what is not written yet */
static void
persist_for_prepare(void)
{
	HASH_SEQ_STATUS seq;
	Note	   *n;

	bool		snap = false;

	hash_seq_init(&seq, notes);
	while ((n = hash_seq_search(&seq)) != NULL)
		if (n->write_at != TS_NONE && n->write_at > n->persisted)
		{
			/* the statement's snapshot is gone by now */
			if (!snap && !ActiveSnapshotSet())
			{
				PushActiveSnapshot(GetTransactionSnapshot());
				snap = true;
			}
			persist(n->key.view_id, n->aggregation, noted_max_ts(n->key.view_id),
					n->write_at, false);
			n->persisted = n->write_at;
		}
	if (snap)
		PopActiveSnapshot();
}

static void
freshness_xact_callback(XactEvent event, void *arg)
{
	if (notes == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			publish();
			forget_notes();
			unpin_all();
			break;
		case XACT_EVENT_PRE_PREPARE:
			persist_for_prepare();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			forget_notes();
			unpin_all();
			break;
		default:
			break;
	}
}

static void
freshness_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	HASH_SEQ_STATUS seq;
	Note	   *n;
	Note	   *moved = NULL;
	int			nmoved = 0;
	int			i;

	if (notes == NULL || hash_get_num_entries(notes) == 0)
		return;
	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	if (event == SUBXACT_EVENT_COMMIT_SUB)
		moved = MemoryContextAlloc(TopMemoryContext,
								   sizeof(Note) * hash_get_num_entries(notes));
	hash_seq_init(&seq, notes);
	while ((n = hash_seq_search(&seq)) != NULL)
	{
		if (n->key.level < level)
			continue;
		if (moved)
			moved[nmoved++] = *n;
		hash_search(notes, &n->key, HASH_REMOVE, NULL);
	}
	/* a committed subtransaction's notes are its parent's now */
	for (i = 0; i < nmoved; i++)
	{
		Note	   *p = note_enter(moved[i].key.view_id, moved[i].aggregation, level - 1);

		p->max_ts = Max(p->max_ts, moved[i].max_ts);
		p->write_at = Max(p->write_at, moved[i].write_at);
		p->persisted = Max(p->persisted, moved[i].persisted);
	}
	if (moved)
		pfree(moved);
}
