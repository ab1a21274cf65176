/*
 * fstore.c
 *		Module entry point: defines the settings shared by several parts,
 *		calls each part's init, and installs the single shared-memory
 *		request/startup hook pair that fans out to the parts.
 *
 * When fstore is not in shared_preload_libraries only the settings and the
 * backend-local parts are set up; every SQL entry point still works from
 * the tables, and the parts that need shared memory check fs_preloaded().
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "fstore.h"
#include "cache/cache.h"
#include "catalog/metadata.h"
#include "ingest/ingest.h"
#include "stats/progress.h"
#include "stats/stats.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(fs_forget_view);
PG_FUNCTION_INFO_V1(fs_init_view);
PG_FUNCTION_INFO_V1(fs_view_changed);

void		_PG_init(void);

bool		fs_shmem_ready = false;
int			fs_max_keys_per_call = 10000;
int			fs_max_feature_views = 1000;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Asks the postmaster for every part's shared memory and locks. */
static void
fs_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(add_size(add_size(add_size(fs_stats_shmem_size(),
													  fs_cache_shmem_size()),
											 fs_ingest_shmem_size()),
									add_size(fs_progress_shmem_size(),
											 fs_wal_shmem_size())));
	RequestNamedLWLockTranche("fstore_stats", 1);
	RequestNamedLWLockTranche("fstore_cache", fs_cache_lwlocks());
	RequestNamedLWLockTranche("fstore_standby", 1);
	RequestNamedLWLockTranche("fstore_ingest", 1);
}

/* Creates (postmaster) or attaches to (EXEC_BACKEND) every part's state. */
static void
fs_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	fs_stats_shmem_startup();
	fs_cache_shmem_startup();
	fs_wal_shmem_startup();
	fs_ingest_shmem_startup();
	fs_progress_shmem_startup();
	LWLockRelease(AddinShmemInitLock);

	fs_shmem_ready = true;
}

bool
fs_preloaded(void)
{
	return fs_shmem_ready;
}

/*
 * The row of view_id in fstore.feature_views, as this transaction sees it:
 * *exists, and whether this transaction inserted it.
 */
static void
view_row(int64 view_id, bool *exists, bool *ours)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(view_id)};

	*exists = *ours = false;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT xmin FROM fstore.feature_views WHERE view_id OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fstore.feature_views");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		xmin = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		*exists = true;
		*ours = !isnull && TransactionIdIsCurrentTransactionId(DatumGetTransactionId(xmin));
	}
	SPI_finish();
}

/*
 * fstore._forget_view(view_id): releases what shared memory holds for a
 * dropped view (called by fs_drop_feature_view, once the view's row is
 * gone).  Entries are keyed by view_id, which is never reused, so this
 * only reclaims memory; it is safe even if the drop rolls back.  Refused
 * for a view that still exists.
 */
Datum
fs_forget_view(PG_FUNCTION_ARGS)
{
	int64		view_id = PG_GETARG_INT64(0);
	bool		exists;
	bool		ours;

	view_row(view_id, &exists, &ours);
	if (exists)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("feature view %lld still exists", (long long) view_id),
				 errhint("fstore._forget_view is called by fs_drop_feature_view.")));
	fs_stats_forget(view_id);
	PG_RETURN_VOID();
}

/*
 * fstore._init_view(view_id): clears any shared state left under a view id
 * (after DROP EXTENSION and CREATE EXTENSION, ids start again); the view
 * then starts with a generation no cache entry has.  Only for a view this
 * transaction created (fs_create_feature_view calls it).
 */
Datum
fs_init_view(PG_FUNCTION_ARGS)
{
	int64		view_id = PG_GETARG_INT64(0);
	bool		exists;
	bool		ours;

	view_row(view_id, &exists, &ours);
	if (!exists || !ours)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("feature view %lld was not created by this transaction", (long long) view_id),
				 errhint("fstore._init_view is called by fs_create_feature_view.")));
	fs_stats_forget(view_id);
	PG_RETURN_VOID();
}

/*
 * fstore._view_changed(name): called by fs_alter_feature_view once it has
 * changed a view.  Takes the view's writer lock (so no fs_write or stream
 * batch is between reading and writing it) and tells the hot cache, at
 * commit, to drop every entry of the view (a new generation).  Other
 * backends and the stream workers reload the view's metadata by
 * themselves: the catalogs' statement triggers and the ALTER TABLEs
 * invalidate it.  Only for the view's owner.
 */
Datum
fs_view_changed(PG_FUNCTION_ARGS)
{
	FsView	   *view = fs_catalog_view(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (!has_privs_of_role(GetUserId(), view->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of feature view \"%s\"", view->name)));
	fs_catalog_lock_view_writers(view);
	fs_cache_note_view(view);
	PG_RETURN_VOID();
}

void
_PG_init(void)
{
	DefineCustomIntVariable("fstore.max_keys_per_call",
							"Largest number of keys one fs_get_many call accepts.",
							"Bounds the memory and time of a single lookup.",
							&fs_max_keys_per_call,
							10000, 1, 10000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	/* a postmaster setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("fstore.max_feature_views",
								"Number of feature views shared memory keeps statistics and cache state for.",
								NULL,
								&fs_max_feature_views,
								1000, 16, 1000000,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);

	fs_catalog_init();
	fs_cache_init();
	fs_wal_init();				/* registers the WAL resource manager when preloading */
	fs_ingest_init();			/* registers the launcher when preloading */
	fs_training_init();
	fs_output_init();

	MarkGUCPrefixReserved("fstore");

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = fs_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = fs_shmem_startup;
}
