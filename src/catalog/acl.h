/*
 * acl.h
 *		Privilege checks, and running another role's code safely: switching
 *		to a feature view's owner in a restricted security context with a
 *		pinned search_path.
 *
 * Dependency direction: a leaf of catalog/; it depends on PostgreSQL and
 * catalog/metadata.h (the FsView type) only.  Every part that checks a
 * privilege or runs another role's code uses it.
 */
#ifndef FS_ACL_H
#define FS_ACL_H

#include "utils/acl.h"

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

/* Raises 42501 ("permission denied for table schema.name"). */
extern void fs_permission_denied(Oid relid) pg_attribute_noreturn();

/* Raises 42501 unless the current user holds every privilege in modes. */
extern void fs_check_table_privileges(Oid relid, AclMode modes);

/*
 * Raises 42501 unless the current user may read every column of relid;
 * 0A000 when the table has row-level security on.
 */
extern void fs_check_select(Oid relid);

/* Raises 42501 unless the user may read and write both tables of the view. */
extern void fs_check_write_privileges(FsView *view);

/* Pins search_path for the rest of the session (background workers). */
extern void fs_pin_session_search_path(void);

#endif							/* FS_ACL_H */
