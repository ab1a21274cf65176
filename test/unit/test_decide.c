/*
 * test_decide.c
 *		Unit tests of fstore's change-detection rules (src/apply/decide.c).
 *
 * A row's features are modelled by one int; the online row and the
 * history are small arrays.  Each test states rows, online state and
 * history, and checks every row's outcome and what the online row becomes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "apply/decide.h"

typedef struct Hist
{
	int64_t		ts;
	int			value;
} Hist;

typedef struct Case
{
	const int  *values;			/* per row */
	int			online_value;
	const Hist *hist;			/* sorted by ts */
	int			nhist;
	int			found;			/* history row history_at found last */
	int			history_calls;
} Case;

static bool
eq_online(void *arg, int i)
{
	Case	   *c = arg;

	return c->values[i] == c->online_value;
}

static bool
eq_rows(void *arg, int i, int j)
{
	Case	   *c = arg;

	return c->values[i] == c->values[j];
}

static bool
history_at(void *arg, int i, int64_t ts, int64_t *hts)
{
	Case	   *c = arg;
	int			h;

	(void) i;
	c->history_calls++;
	c->found = -1;
	for (h = 0; h < c->nhist; h++)
		if (c->hist[h].ts <= ts)
			c->found = h;
	if (c->found < 0)
		return false;
	*hts = c->hist[c->found].ts;
	return true;
}

static bool
eq_history(void *arg, int i)
{
	Case	   *c = arg;

	assert_true(c->found >= 0);
	return c->values[i] == c->hist[c->found].value;
}

static const FsDecideOps ops = {eq_online, eq_rows, history_at, eq_history};

#define RUN(ts_, vals_, n_, has_online_, online_ts_, online_val_, ttl_, hist_, nhist_) \
	do { \
		c.values = (vals_); c.online_value = (online_val_); \
		c.hist = (hist_); c.nhist = (nhist_); c.history_calls = 0; \
		fs_decide_key((ts_), (n_), (has_online_), (online_ts_), (ttl_), &ops, &c, out, &res); \
	} while (0)

static void
test_new_key_is_written(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {10};
	int			v[] = {7};

	(void) state;
	RUN(ts, v, 1, false, 0, 0, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_WRITTEN);
	assert_true(res.online_dirty);
	assert_int_equal(res.online_source, 0);
	assert_int_equal(res.online_ts, 10);
	assert_int_equal(res.written, 1);
	assert_int_equal(c.history_calls, 0);
}

static void
test_equal_is_unchanged_without_ttl(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {20};
	int			v[] = {5};

	(void) state;
	RUN(ts, v, 1, true, 10, 5, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_UNCHANGED);
	assert_false(res.online_dirty);
	assert_int_equal(res.unchanged, 1);
}

static void
test_equal_moves_ts_with_ttl(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {20};
	int			v[] = {5};

	(void) state;
	RUN(ts, v, 1, true, 10, 5, true, NULL, 0);
	assert_int_equal(out[0], FS_OUT_UNCHANGED);
	assert_true(res.online_dirty);
	assert_int_equal(res.online_source, -1);
	assert_int_equal(res.online_ts, 20);
}

static void
test_same_ts_as_online_equal_is_unchanged_even_with_ttl(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {10};
	int			v[] = {5};

	(void) state;
	RUN(ts, v, 1, true, 10, 5, true, NULL, 0);
	assert_int_equal(out[0], FS_OUT_UNCHANGED);
	assert_false(res.online_dirty);
}

static void
test_same_ts_as_online_different_is_written(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {10};
	int			v[] = {6};

	(void) state;
	RUN(ts, v, 1, true, 10, 5, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_WRITTEN);
	assert_true(res.online_dirty);
	assert_int_equal(res.online_source, 0);
}

static void
test_late_equal_to_history_is_unchanged(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {5};
	int			v[] = {3};
	Hist		h[] = {{2, 3}, {8, 9}};

	(void) state;
	RUN(ts, v, 1, true, 10, 1, false, h, 2);
	assert_int_equal(out[0], FS_OUT_UNCHANGED);
	assert_false(res.online_dirty);
	assert_int_equal(c.history_calls, 1);
}

static void
test_late_equal_to_history_at_same_ts_is_unchanged(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {8};
	int			v[] = {9};
	Hist		h[] = {{2, 3}, {8, 9}};

	(void) state;
	RUN(ts, v, 1, true, 10, 1, false, h, 2);
	assert_int_equal(out[0], FS_OUT_UNCHANGED);
}

static void
test_late_different_is_late(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {5};
	int			v[] = {4};
	Hist		h[] = {{2, 3}};

	(void) state;
	RUN(ts, v, 1, true, 10, 1, false, h, 1);
	assert_int_equal(out[0], FS_OUT_LATE);
	assert_false(res.online_dirty);
	assert_int_equal(res.late, 1);
}

static void
test_late_without_history_is_late(void **state)
{
	Case		c;
	FsOutcome	out[1];
	FsDecideResult res;
	int64_t		ts[] = {5};
	int			v[] = {1};

	(void) state;
	/* equal to the online value, but nothing was in effect at ts 5 */
	RUN(ts, v, 1, true, 10, 1, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_LATE);
}

static void
test_intermediate_changes_are_all_written(void **state)
{
	Case		c;
	FsOutcome	out[3];
	FsDecideResult res;
	int64_t		ts[] = {1, 2, 3};
	int			v[] = {1, 2, 1};

	(void) state;
	RUN(ts, v, 3, false, 0, 0, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_WRITTEN);
	assert_int_equal(out[1], FS_OUT_WRITTEN);
	assert_int_equal(out[2], FS_OUT_WRITTEN);
	assert_int_equal(res.online_source, 2);
	assert_int_equal(res.online_ts, 3);
	assert_int_equal(res.written, 3);
}

static void
test_repeats_in_one_call_are_unchanged(void **state)
{
	Case		c;
	FsOutcome	out[3];
	FsDecideResult res;
	int64_t		ts[] = {1, 2, 3};
	int			v[] = {4, 4, 5};

	(void) state;
	RUN(ts, v, 3, false, 0, 0, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_WRITTEN);
	assert_int_equal(out[1], FS_OUT_UNCHANGED);
	assert_int_equal(out[2], FS_OUT_WRITTEN);
	assert_int_equal(res.online_source, 2);
}

static void
test_same_ts_last_wins(void **state)
{
	Case		c;
	FsOutcome	out[3];
	FsDecideResult res;
	int64_t		ts[] = {4, 4, 4};
	int			v[] = {1, 2, 3};

	(void) state;
	RUN(ts, v, 3, false, 0, 0, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_SUPERSEDED);
	assert_int_equal(out[1], FS_OUT_SUPERSEDED);
	assert_int_equal(out[2], FS_OUT_WRITTEN);
	assert_int_equal(res.online_source, 2);
	assert_int_equal(res.unchanged, 2);
	assert_int_equal(res.written, 1);
}

static void
test_consecutive_late_rows_compare_with_previous(void **state)
{
	Case		c;
	FsOutcome	out[2];
	FsDecideResult res;
	int64_t		ts[] = {1, 2};
	int			v[] = {7, 7};

	(void) state;
	RUN(ts, v, 2, true, 10, 9, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_LATE);
	assert_int_equal(out[1], FS_OUT_UNCHANGED);
}

static void
test_late_row_prefers_newer_history_over_previous_late(void **state)
{
	Case		c;
	FsOutcome	out[2];
	FsDecideResult res;
	int64_t		ts[] = {1, 5};
	int			v[] = {7, 7};
	Hist		h[] = {{3, 8}};

	(void) state;
	RUN(ts, v, 2, true, 10, 9, false, h, 1);
	assert_int_equal(out[0], FS_OUT_LATE);	/* nothing before ts 1 */
	assert_int_equal(out[1], FS_OUT_LATE);	/* history at 3 says 8 */
}

static void
test_late_then_confirm_then_change(void **state)
{
	Case		c;
	FsOutcome	out[3];
	FsDecideResult res;
	int64_t		ts[] = {3, 7, 9};
	int			v[] = {2, 1, 4};

	(void) state;
	RUN(ts, v, 3, true, 5, 1, false, NULL, 0);
	assert_int_equal(out[0], FS_OUT_LATE);
	assert_int_equal(out[1], FS_OUT_UNCHANGED);
	assert_int_equal(out[2], FS_OUT_WRITTEN);
	assert_int_equal(res.online_source, 2);
	assert_int_equal(res.online_ts, 9);
}

static void
test_equal_timestamps_confirm_once(void **state)
{
	Case		c;
	FsOutcome	out[2];
	FsDecideResult res;
	int64_t		ts[] = {20, 20};
	int			v[] = {1, 1};

	(void) state;
	/* equal timestamps: the first is superseded, the second confirms */
	RUN(ts, v, 2, true, 10, 1, true, NULL, 0);
	assert_int_equal(out[0], FS_OUT_SUPERSEDED);
	assert_int_equal(out[1], FS_OUT_UNCHANGED);
	assert_true(res.online_dirty);
	assert_int_equal(res.online_ts, 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_key_is_written),
		cmocka_unit_test(test_equal_is_unchanged_without_ttl),
		cmocka_unit_test(test_equal_moves_ts_with_ttl),
		cmocka_unit_test(test_same_ts_as_online_equal_is_unchanged_even_with_ttl),
		cmocka_unit_test(test_same_ts_as_online_different_is_written),
		cmocka_unit_test(test_late_equal_to_history_is_unchanged),
		cmocka_unit_test(test_late_equal_to_history_at_same_ts_is_unchanged),
		cmocka_unit_test(test_late_different_is_late),
		cmocka_unit_test(test_late_without_history_is_late),
		cmocka_unit_test(test_intermediate_changes_are_all_written),
		cmocka_unit_test(test_repeats_in_one_call_are_unchanged),
		cmocka_unit_test(test_same_ts_last_wins),
		cmocka_unit_test(test_consecutive_late_rows_compare_with_previous),
		cmocka_unit_test(test_late_row_prefers_newer_history_over_previous_late),
		cmocka_unit_test(test_late_then_confirm_then_change),
		cmocka_unit_test(test_equal_timestamps_confirm_once),
	};

	return cmocka_run_group_tests_name("decide", tests, NULL, NULL);
}
