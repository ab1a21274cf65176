/*
 * acl.c
 *		Privilege checks, and switching to the role that owns code fstore
 *		runs.
 *
 * Every check of a privilege on a table fstore reads or writes for its
 * caller is here: the caller's rights are checked before any side effect,
 * and a refusal is PostgreSQL's own (aclcheck_error: 42501, "permission
 * denied for table ...", the name schema-qualified).
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
#include "utils/lsyscache.h"
#include "utils/rls.h"

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

void
fs_permission_denied(Oid relid)
{
	char	   *name = psprintf("%s.%s",
								get_namespace_name(get_rel_namespace(relid)),
								get_rel_name(relid));

	aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, name);
	pg_unreachable();
}

void
fs_check_table_privileges(Oid relid, AclMode modes)
{
	if (pg_class_aclmask(relid, GetUserId(), modes, ACLMASK_ALL) != modes)
		fs_permission_denied(relid);
}

void
fs_check_select(Oid relid)
{
	Oid			user = GetUserId();

	/* SELECT on the table, or on each of its columns */
	if (pg_class_aclcheck(relid, user, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, user, ACL_SELECT, ACLMASK_ALL) != ACLCHECK_OK)
		fs_permission_denied(relid);
	if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("fstore does not support row-level security on \"%s\"",
						get_rel_name(relid)),
				 errhint("Disable row-level security on the feature view's tables, or query them with SQL.")));
}

void
fs_check_write_privileges(FsView *view)
{
	/* SELECT too: the counts returned tell what the tables hold */
	fs_check_table_privileges(view->online_relid, ACL_SELECT | ACL_INSERT | ACL_UPDATE);
	fs_check_table_privileges(view->offline_relid, ACL_SELECT | ACL_INSERT);
	if (check_enable_rls(view->online_relid, InvalidOid, false) == RLS_ENABLED ||
		check_enable_rls(view->offline_relid, InvalidOid, false) == RLS_ENABLED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("fstore does not support row-level security on the tables of feature view \"%s\"",
						view->name)));
}
