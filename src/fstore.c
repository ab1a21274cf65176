/*
 * fstore.c
 *		Module entry point: defines the settings shared by several parts,
 *		calls each part's init, and installs the single shared-memory
 *		request/startup hook pair that fans out to the parts.
 *
 * Dependency direction: the top of the module graph (scripts/modgraph.sh
 * calls it "top").  Nothing calls into this file but PostgreSQL; it holds
 * no function another part uses (those live in util/ and the parts).
 *
 * When fstore is not in shared_preload_libraries only the settings and the
 * backend-local parts are set up; every SQL entry point still works from
 * the tables, and the parts that need shared memory check fs_preloaded().
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "aggregate/aggregate.h"
#include "cache/cache.h"
#include "cache/generation.h"
#include "catalog/metadata.h"
#include "ingest/ingest.h"
#include "online/online.h"
#include "stats/progress.h"
#include "stats/freshness.h"
#include "stats/stats.h"
#include "training/training.h"
#include "util/util.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Asks the postmaster for every part's shared memory and locks. */
static void
fs_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(add_size(add_size(add_size(add_size(fs_stats_shmem_size(),
															   fs_freshness_shmem_size()),
													  fs_cache_shmem_size()),
											 add_size(fs_ingest_shmem_size(),
													  fs_viewgen_shmem_size())),
									add_size(fs_progress_shmem_size(),
											 fs_wal_shmem_size())));
	RequestNamedLWLockTranche("fstore_stats", 1);
	RequestNamedLWLockTranche("fstore_freshness", 1);
	RequestNamedLWLockTranche("fstore_viewgen", 1);
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
	fs_freshness_shmem_startup();
	fs_viewgen_shmem_startup();
	fs_cache_shmem_startup();
	fs_wal_shmem_startup();
	fs_ingest_shmem_startup();
	fs_progress_shmem_startup();
	LWLockRelease(AddinShmemInitLock);

	fs_shmem_ready = true;
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
