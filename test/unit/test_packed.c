/*
 * test_packed.c
 *		Unit tests of the client decoder include/fstore_packed.h, on the
 *		exact bytes the server produced for sql/05_cache.sql's example.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "fstore_packed.h"

/* keys 1, 3 (absent), 2 (some NULLs), NULL of view pk(x real, n int, t text, v real[]) */
static const char *answer_hex =
	"4653503104030201040000000400000030000000000000000500010078030001006e"
	"10000100742000010076000000000140420f0000000000000000c03f070000000200"
	"00006869020000000000803f00000040000100000000000000000dffffffff00";

static uint8_t *
unhex(const char *hex, size_t *len)
{
	size_t		n = strlen(hex) / 2;
	uint8_t    *b = malloc(n);
	size_t		i;

	for (i = 0; i < n; i++)
	{
		unsigned	v;

		sscanf(hex + 2 * i, "%2x", &v);
		b[i] = (uint8_t) v;
	}
	*len = n;
	return b;
}

static void
test_header(void **state)
{
	size_t		len;
	uint8_t    *b = unhex(answer_hex, &len);
	fsp_reader *r = malloc(sizeof(fsp_reader));

	(void) state;
	assert_int_equal(fsp_open(r, b, len), 0);
	assert_int_equal(r->nrecords, 4);
	assert_int_equal(r->nfeatures, 4);
	assert_int_equal(r->codes[0], FSP_FLOAT4);
	assert_int_equal(r->codes[1], FSP_INT4);
	assert_int_equal(r->codes[2], FSP_BYTES);
	assert_int_equal(r->codes[3], FSP_FLOAT4_ARRAY);
	assert_int_equal(r->name_len[2], 1);
	assert_memory_equal(r->names[2], "t", 1);
	free(r);
	free(b);
}

static void
test_records(void **state)
{
	size_t		len;
	uint8_t    *b = unhex(answer_hex, &len);
	fsp_reader *r = malloc(sizeof(fsp_reader));
	fsp_record *rec = malloc(sizeof(fsp_record));
	float		f;
	int32_t		i4;

	(void) state;
	assert_int_equal(fsp_open(r, b, len), 0);

	/* key 1: every feature present */
	assert_int_equal(fsp_next(r, rec), 1);
	assert_true(rec->present);
	assert_int_equal(rec->event_ts, 1000000);
	memcpy(&f, rec->value[0], 4);
	assert_true(f == 1.5f);
	memcpy(&i4, rec->value[1], 4);
	assert_int_equal(i4, 7);
	assert_int_equal(rec->count[2], 2);
	assert_memory_equal(rec->value[2], "hi", 2);
	assert_int_equal(rec->count[3], 2);
	memcpy(&f, rec->value[3] + 4, 4);
	assert_true(f == 2.0f);

	/* key 3: absent */
	assert_int_equal(fsp_next(r, rec), 1);
	assert_false(rec->present);

	/* key 2: x, t and v NULL, n = -1 */
	assert_int_equal(fsp_next(r, rec), 1);
	assert_true(rec->present);
	assert_int_equal(rec->event_ts, 0);
	assert_null(rec->value[0]);
	memcpy(&i4, rec->value[1], 4);
	assert_int_equal(i4, -1);
	assert_null(rec->value[2]);
	assert_null(rec->value[3]);

	/* NULL key: absent; then the end */
	assert_int_equal(fsp_next(r, rec), 1);
	assert_false(rec->present);
	assert_int_equal(fsp_next(r, rec), 0);
	free(rec);
	free(r);
	free(b);
}

static void
test_truncated_is_an_error(void **state)
{
	size_t		len;
	uint8_t    *b = unhex(answer_hex, &len);
	fsp_reader *r = malloc(sizeof(fsp_reader));
	fsp_record *rec = malloc(sizeof(fsp_record));
	int			rc;

	(void) state;
	assert_int_equal(fsp_open(r, b, len - 10), 0);
	while ((rc = fsp_next(r, rec)) == 1)
		;
	assert_int_equal(rc, -1);
	assert_int_equal(fsp_open(r, b, 10), -1);
	b[0] = 'X';
	assert_int_equal(fsp_open(r, b, len), -1);
	free(rec);
	free(r);
	free(b);
}

static void
test_float_matrix(void **state)
{
	/* a float4-only answer: 2 features, records: present, absent, NULL f1 */
	static const uint8_t buf[] = {
		'F', 'S', 'P', '1', 0x04, 0x03, 0x02, 0x01, 3, 0, 0, 0, 2, 0, 0, 0,
		40, 0, 0, 0, 0, 0, 0, 0,
		5, 0, 1, 0, 'a', 5, 0, 1, 0, 'b', 0, 0, 0, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40,
		0,
		1, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x00, 0x40, 0x40
	};
	float		m[6];

	(void) state;
	assert_int_equal(fsp_decode_float_matrix(buf, sizeof(buf), m, 6, -1.0f), 3);
	assert_true(m[0] == 1.0f && m[1] == 2.0f);
	assert_true(m[2] == -1.0f && m[3] == -1.0f);
	assert_true(m[4] == 3.0f && m[5] == -1.0f);
	assert_int_equal(fsp_decode_float_matrix(buf, sizeof(buf), m, 5, -1.0f), -1);
	assert_int_equal(fsp_decode_float_matrix(buf, sizeof(buf) - 1, m, 6, -1.0f), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_truncated_is_an_error),
		cmocka_unit_test(test_float_matrix),
	};

	return cmocka_run_group_tests_name("packed", tests, NULL, NULL);
}
