/*
 * acl.c
 *		Switching to the role that owns code fstore runs.
 *
 * fstore runs code that belongs to other roles: a view's triggers,
 * constraints and defaults fire when a stream worker applies events; a
 * view's source relation or source query is read by fs_materialize and
 * its pg_cron job; the casts of a view's types run when a dead letter is
 * recorded.  Such code must never run with the rights of whoever happens
 * to call fstore (a superuser, the stream worker's bootstrap superuser, the
 * extension owner), nor resolve names through a search_path another role
 * chose.  fs_become_owner switches to the view's owner the way PostgreSQL
 * itself runs a materialized view's query or an index expression during
 * maintenance: SetUserIdAndSecContext with SECURITY_RESTRICTED_OPERATION
 * and a new GUC nest level whose search_path is pinned.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "catalog/acl.h"

void
fs_become_owner(Oid owner, FsUserContext *ctx)
{
	GetUserIdAndSecContext(&ctx->save_user, &ctx->save_sec);
	SetUserIdAndSecContext(owner, ctx->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ctx->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", FS_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
fs_restore_user(FsUserContext *ctx)
{
	/* anything the owner's code SET (even at session level) goes too */
	AtEOXact_GUC(false, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_user, ctx->save_sec);
}

void
fs_pin_session_search_path(void)
{
	/* a session-level SET outranks ALTER DATABASE / ROLE settings */
	SetConfigOption("search_path", FS_SAFE_SEARCH_PATH, PGC_USERSET,
					PGC_S_SESSION);
}
