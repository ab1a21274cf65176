/*
 * training.c
 *		C support of training sets (the SQL is generated in fstore--*.sql by
 *		fs_training_set_query).
 *
 * fstore.carry_forward(anyelement) is a window aggregate that returns the
 * latest non-NULL value seen so far.  The merge strategy of a training set
 * sorts a view's history rows and the entity rows together by key and time
 * and carries each history row (as a whole record, so that NULL features
 * stay NULL) forward onto the entity rows that follow it: an as-of join in
 * one pass.
 */
#include "postgres.h"

#include "fmgr.h"

PG_FUNCTION_INFO_V1(fs_take_latest);

/*
 * fstore._take_latest(state, value) -> value: the transition function of
 * fstore.carry_forward.  It is strict and the aggregate has no initial
 * state, so the first non-NULL value starts the state and NULLs keep it.
 */
Datum
fs_take_latest(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(PG_GETARG_DATUM(1));
}
