/*
 * hll.c
 *		HyperLogLog sketches for approx_count_distinct(c) OVER w in
 *		aggregation views (docs/aggregations.md "Approximate distinct
 *		counts").
 *
 * Each tile keeps one sketch of its events' values of c (a bytea tile
 * column); a read merges the sketches of the window's tiles (register-wise
 * maximum) and estimates the number of distinct values.
 *
 * Parameters: precision p = 12, so m = 4096 registers; each value's 64-bit
 * hash (the type's extended hash function, seed 0, remixed) picks a register with
 * its top p bits, and the register keeps the largest "rank" seen: the
 * position of the first 1 bit among the other 64 - p bits (1 to 53).  The
 * relative standard error of the estimate is 1.04 / sqrt(m) = 1.6 %.
 *
 * Estimate: the "improved raw estimator" of O. Ertl (New cardinality
 * estimation algorithms for HyperLogLog sketches, 2017), computed from the
 * histogram of register values.  It needs no bias tables and no switch to
 * linear counting: for small cardinalities it behaves like linear counting
 * (m ln(m / empty registers)), which is exact unless two values share a
 * register (below 20 distinct values that happens with probability under
 * 5 %, and then the estimate is one short).
 *
 * Layout (bytea), version byte first:
 *   sparse: 1, p, then 3 bytes per non-empty register: its index (2 bytes,
 *           most significant first) and its rank, ascending by index
 *           (5 bytes for a tile with one value);
 *   dense:  2, p, then m bytes, one rank per register (4,098 bytes).
 * The same bytes on every platform.  A sketch is sparse while 3 bytes per
 * non-empty register are fewer than m bytes (up to 1,365 non-empty
 * registers) and dense after.  Sketches are
 * checked when read (version, precision, length, order, ranks): a
 * malformed one is refused with XX001, never read out of bounds.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

PG_FUNCTION_INFO_V1(fs_hll_add);
PG_FUNCTION_INFO_V1(fs_hll_sketch_final);
PG_FUNCTION_INFO_V1(fs_hll_merge);
PG_FUNCTION_INFO_V1(fs_hll_union);
PG_FUNCTION_INFO_V1(fs_hll_count_final);
PG_FUNCTION_INFO_V1(fs_hll_estimate);
PG_FUNCTION_INFO_V1(fs_hll_hashable);

#define HLL_P		12
#define HLL_M		(1 << HLL_P)
#define HLL_Q		(64 - HLL_P)	/* ranks are 1 .. HLL_Q + 1 */
#define HLL_SPARSE	1
#define HLL_DENSE	2
#define HLL_HDR		2

/* The aggregate state: dense registers, and how values are hashed. */
typedef struct HllState
{
	uint8		reg[HLL_M];
	Oid			type;			/* of the values (fs_hll_add) */
	FmgrInfo	hash;			/* its extended hash function */
	Oid			collation;
} HllState;

static HllState *
state_new(MemoryContext cxt)
{
	return MemoryContextAllocZero(cxt, sizeof(HllState));
}

/*
 * The types' extended hash functions are built for hash tables: their high
 * bits are not uniform enough for HyperLogLog's leading-zero counts (an
 * estimate 1-2 % low on sequential integers).  A 64-bit finalizer
 * (xor-shifts and multiplications by odd constants, a bijection) spreads
 * every input bit over every output bit first.
 */
static uint64
remix(uint64 h)
{
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

static void
add_hash(uint8 *reg, uint64 h)
{
	uint32		idx;
	uint64		rest;
	uint8		rank;

	h = remix(h);
	idx = (uint32) (h >> HLL_Q);
	rest = h << HLL_P;

	/* the first 1 bit of the remaining HLL_Q bits; HLL_Q + 1 if none */
	rank = rest == 0 ? HLL_Q + 1 : (uint8) (pg_leftmost_one_pos64(rest) ^ 63) + 1;
	if (rank > HLL_Q + 1)
		rank = HLL_Q + 1;
	if (reg[idx] < rank)
		reg[idx] = rank;
}

static void
corrupt(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid approximate distinct count sketch"),
			 errdetail("%s", why)));
}

/* Merges sketch s (checked here) into the registers reg. */
static void
merge_sketch(uint8 *reg, bytea *s)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(s);
	Size		len = VARSIZE_ANY_EXHDR(s);
	Size		i;

	if (len < HLL_HDR)
		corrupt("The sketch is shorter than its header.");
	if (p[1] != HLL_P)
		corrupt(psprintf("The sketch has precision %d, not %d.", p[1], HLL_P));
	if (p[0] == HLL_DENSE)
	{
		if (len != HLL_HDR + HLL_M)
			corrupt("A dense sketch has the wrong length.");
		for (i = 0; i < HLL_M; i++)
		{
			uint8		r = p[HLL_HDR + i];

			if (r > HLL_Q + 1)
				corrupt("A register holds an impossible rank.");
			if (reg[i] < r)
				reg[i] = r;
		}
	}
	else if (p[0] == HLL_SPARSE)
	{
		int64		last = -1;

		if ((len - HLL_HDR) % 3 != 0)
			corrupt("A sparse sketch has the wrong length.");
		for (i = HLL_HDR; i < len; i += 3)
		{
			uint32		idx = ((uint32) p[i] << 8) | p[i + 1];
			uint8		r = p[i + 2];

			if (idx >= HLL_M || (int64) idx <= last || r == 0 || r > HLL_Q + 1)
				corrupt("A sparse sketch has an invalid entry.");
			last = idx;
			if (reg[idx] < r)
				reg[idx] = r;
		}
	}
	else
		corrupt(psprintf("Unknown sketch version %d.", p[0]));
}

/* The registers as a sketch: sparse while that is smaller. */
static bytea *
sketch_from(const uint8 *reg)
{
	int			n = 0;
	int			i;
	bytea	   *out;
	uint8	   *p;

	for (i = 0; i < HLL_M; i++)
		if (reg[i] != 0)
			n++;
	if (3 * n < HLL_M)
	{
		out = palloc(VARHDRSZ + HLL_HDR + 3 * n);
		SET_VARSIZE(out, VARHDRSZ + HLL_HDR + 3 * n);
		p = (uint8 *) VARDATA(out);
		p[0] = HLL_SPARSE;
		p[1] = HLL_P;
		p += HLL_HDR;
		for (i = 0; i < HLL_M; i++)
			if (reg[i] != 0)
			{
				*p++ = (uint8) (i >> 8);
				*p++ = (uint8) (i & 0xff);
				*p++ = reg[i];
			}
	}
	else
	{
		out = palloc(VARHDRSZ + HLL_HDR + HLL_M);
		SET_VARSIZE(out, VARHDRSZ + HLL_HDR + HLL_M);
		p = (uint8 *) VARDATA(out);
		p[0] = HLL_DENSE;
		p[1] = HLL_P;
		memcpy(p + HLL_HDR, reg, HLL_M);
	}
	return out;
}

/* sigma and tau of Ertl's estimator (series summed until they converge) */
static double
hll_sigma(double x)
{
	double		y = 1.0;
	double		z = x;
	double		zprev;

	if (x >= 1.0)
		return INFINITY;
	do
	{
		x *= x;
		zprev = z;
		z += x * y;
		y += y;
	} while (z != zprev);
	return z;
}

static double
hll_tau(double x)
{
	double		y = 1.0;
	double		z;
	double		zprev;

	if (x <= 0.0 || x >= 1.0)
		return 0.0;
	z = 1.0 - x;
	do
	{
		x = sqrt(x);
		zprev = z;
		y *= 0.5;
		z -= (1.0 - x) * (1.0 - x) * y;
	} while (z != zprev);
	return z / 3.0;
}

/* The estimated number of distinct values of the registers. */
static int64
estimate(const uint8 *reg)
{
	int			c[HLL_Q + 2] = {0};
	double		m = HLL_M;
	double		z;
	int			i;
	int			k;

	for (i = 0; i < HLL_M; i++)
		c[reg[i]]++;
	if (c[0] == HLL_M)
		return 0;
	z = m * hll_tau(1.0 - c[HLL_Q + 1] / m);
	for (k = HLL_Q; k >= 1; k--)
		z = 0.5 * (z + c[k]);
	z += m * hll_sigma(c[0] / m);
	return (int64) llround(m * m / (2.0 * log(2.0)) / z);
}

static MemoryContext
agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return cxt;
}

/*
 * fstore._hll_add(state internal, value anyelement): adds a value (NULLs
 * are ignored, as SQL aggregates do).
 */
Datum
fs_hll_add(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = agg_context(fcinfo, "fstore._hll_add");
	HllState   *st = PG_ARGISNULL(0) ? NULL : (HllState *) PG_GETARG_POINTER(0);
	uint64		h;

	if (st == NULL)
	{
		Oid			type = get_fn_expr_argtype(fcinfo->flinfo, 1);
		TypeCacheEntry *tc;

		st = state_new(cxt);
		st->type = type;
		tc = lookup_type_cache(type, TYPECACHE_HASH_EXTENDED_PROC_FINFO);
		if (!OidIsValid(tc->hash_extended_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify an extended hash function for type %s",
							format_type_be(type))));
		fmgr_info_cxt(tc->hash_extended_proc, &st->hash, cxt);
		st->collation = PG_GET_COLLATION();
	}
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);
	h = DatumGetUInt64(FunctionCall2Coll(&st->hash, st->collation,
										 PG_GETARG_DATUM(1), UInt64GetDatum(0)));
	add_hash(st->reg, h);
	PG_RETURN_POINTER(st);
}

/* fstore._hll_sketch's final function: the sketch, NULL for no values */
Datum
fs_hll_sketch_final(PG_FUNCTION_ARGS)
{
	HllState   *st = PG_ARGISNULL(0) ? NULL : (HllState *) PG_GETARG_POINTER(0);
	int			i;

	(void) agg_context(fcinfo, "fstore._hll_sketch_final");
	if (st == NULL)
		PG_RETURN_NULL();
	for (i = 0; i < HLL_M; i++)
		if (st->reg[i] != 0)
			break;
	if (i == HLL_M)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(sketch_from(st->reg));
}

/* fstore._hll_merge(a bytea, b bytea): the union (NULL is empty) */
Datum
fs_hll_merge(PG_FUNCTION_ARGS)
{
	uint8	   *reg;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	reg = palloc0(HLL_M);
	if (!PG_ARGISNULL(0))
		merge_sketch(reg, PG_GETARG_BYTEA_PP(0));
	if (!PG_ARGISNULL(1))
		merge_sketch(reg, PG_GETARG_BYTEA_PP(1));
	PG_RETURN_BYTEA_P(sketch_from(reg));
}

/* fstore._hll_union(state internal, sketch bytea): for fstore._hll_count */
Datum
fs_hll_union(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = agg_context(fcinfo, "fstore._hll_union");
	HllState   *st = PG_ARGISNULL(0) ? NULL : (HllState *) PG_GETARG_POINTER(0);

	if (st == NULL)
		st = state_new(cxt);
	if (!PG_ARGISNULL(1))
		merge_sketch(st->reg, PG_GETARG_BYTEA_PP(1));
	PG_RETURN_POINTER(st);
}

/* fstore._hll_count's final function: the estimate, 0 for no sketches */
Datum
fs_hll_count_final(PG_FUNCTION_ARGS)
{
	HllState   *st = PG_ARGISNULL(0) ? NULL : (HllState *) PG_GETARG_POINTER(0);

	(void) agg_context(fcinfo, "fstore._hll_count_final");
	if (st == NULL)
		PG_RETURN_INT64(0);
	PG_RETURN_INT64(estimate(st->reg));
}

/* fstore._hll_estimate(sketch bytea): the estimate of one sketch */
Datum
fs_hll_estimate(PG_FUNCTION_ARGS)
{
	uint8	   *reg = palloc0(HLL_M);

	merge_sketch(reg, PG_GETARG_BYTEA_PP(0));
	PG_RETURN_INT64(estimate(reg));
}

/* fstore._hll_hashable(type regtype): whether values of type can be sketched */
Datum
fs_hll_hashable(PG_FUNCTION_ARGS)
{
	TypeCacheEntry *tc = lookup_type_cache(PG_GETARG_OID(0), TYPECACHE_HASH_EXTENDED_PROC);

	PG_RETURN_BOOL(OidIsValid(tc->hash_extended_proc));
}
