/*
 * util.c
 *		The state every part of fstore may read: the shared settings'
 *		variables (src/fstore.c defines the settings) and whether the
 *		shared-memory startup hook ran.
 */
#include "postgres.h"

#include "util/util.h"

bool		fs_shmem_ready = false;
int			fs_max_keys_per_call = 10000;
int			fs_max_feature_views = 1000;
int			fs_stream_batch_size = 10000;

bool
fs_preloaded(void)
{
	return fs_shmem_ready;
}
