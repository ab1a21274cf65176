/*
 * acl.h
 *		Running another role's code safely: switching to a feature view's
 *		owner in a restricted security context with a pinned search_path.
 *
 * A leaf: it depends on PostgreSQL and catalog/metadata.h only.
 */
#ifndef FS_ACL_H
#define FS_ACL_H

#include "catalog/metadata.h"

/* the search_path fstore runs its own and other roles' SQL with */
#define FS_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/* What fs_become_owner saved, for fs_restore_user. */
typedef struct FsUserContext
{
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
} FsUserContext;

/*
 * Runs what follows as the view's owner, in a restricted security context
 * (SECURITY_RESTRICTED_OPERATION: no SET ROLE, no temporary objects, no
 * session state that outlives the operation), with search_path pinned to
 * pg_catalog, pg_temp in a GUC nest level of its own.  As REFRESH
 * MATERIALIZED VIEW does for a view's query.  An error unwinds all of it
 * with the (sub)transaction.
 */
extern void fs_become_owner(Oid owner, FsUserContext *ctx);
extern void fs_restore_user(FsUserContext *ctx);

/* Pins search_path for the rest of the session (background workers). */
extern void fs_pin_session_search_path(void);

#endif							/* FS_ACL_H */
