/*
 * keys.c
 *		Building, sorting and hashing a batch of lookup keys.
 *
 * Sorting uses the SortSupport of the online table's primary key, so the
 * distinct keys come out in index order (one forward pass over the index)
 * and two keys are "the same" exactly when the primary key says so.
 * Hashing uses each key type's default extended hash function, combined
 * across key columns; a batch that is not sorted is de-duplicated with a
 * simplehash table (lib/simplehash.h) on that hash.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "keys/keys.h"

#define FS_KEY_HASH_SEED 0x6673746f7265ULL	/* "fstore" */

int
fs_keys_compare(FsView *view, const Datum *a, const Datum *b)
{
	int			k;

	for (k = 0; k < view->nkeys; k++)
	{
		int			c = ApplySortComparator(a[k], false, b[k], false,
											&view->key_ssup[k]);

		if (c != 0)
			return c;
	}
	return 0;
}

static int
input_cmp(const void *pa, const void *pb, void *arg)
{
	FsKeyBatch *b = (FsKeyBatch *) arg;
	int			ia = *(const int *) pa;
	int			ib = *(const int *) pb;
	int			c;

	c = fs_keys_compare(b->view, &b->in_vals[ia * b->nkeycols],
						&b->in_vals[ib * b->nkeycols]);
	if (c != 0)
		return c;
	return (ia > ib) - (ia < ib);
}

/* the key columns of input i */
#define BATCH_KEY(b, i) (&(b)->in_vals[(i) * (b)->nkeycols])

/* An entry of the de-duplication table: a distinct key of the batch. */
typedef struct KeySlot
{
	int			input;			/* an input holding the key (the hash key) */
	int			distinct;		/* its distinct index */
	uint32		hash;			/* low bits of fs_key_hash */
	char		status;			/* simplehash's */
} KeySlot;

#define SH_PREFIX keyset
#define SH_ELEMENT_TYPE KeySlot
#define SH_KEY_TYPE int
#define SH_KEY input
#define SH_HASH_KEY(tb, key) \
	((uint32) fs_key_hash(((FsKeyBatch *) (tb)->private_data)->view, \
						  BATCH_KEY((FsKeyBatch *) (tb)->private_data, key)))
#define SH_EQUAL(tb, a, b) \
	(fs_keys_compare(((FsKeyBatch *) (tb)->private_data)->view, \
					 BATCH_KEY((FsKeyBatch *) (tb)->private_data, a), \
					 BATCH_KEY((FsKeyBatch *) (tb)->private_data, b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * Deforms n composite values (elems, NULL where nulls[i]) of row type td
 * into vals/isnull, td->natts values per element; a NULL element gives
 * td->natts NULLs.
 */
void
fs_keys_deform_rows(TupleDesc td, Datum *elems, bool *nulls, int n,
					Datum *vals, bool *isnull)
{
	int			w = td->natts;
	int			i;

	for (i = 0; i < n; i++)
	{
		HeapTupleData tuple;
		HeapTupleHeader th;

		if (nulls[i])
		{
			memset(&isnull[i * w], true, w);
			continue;
		}
		th = DatumGetHeapTupleHeader(elems[i]);
		tuple.t_len = HeapTupleHeaderGetDatumLength(th);
		ItemPointerSetInvalid(&tuple.t_self);
		tuple.t_tableOid = InvalidOid;
		tuple.t_data = th;
		heap_deform_tuple(&tuple, td, &vals[i * w], &isnull[i * w]);
	}
}

/*
 * Deconstructs a key array of the view's key type into a batch, then sorts
 * and deduplicates the keys.  A NULL element is a NULL key; a composite key
 * with a NULL field cannot exist in the table and is simply never found.
 */
static void dedupe_by_hash(FsKeyBatch *b, const int *inputs, int n);

void
fs_keys_from_array(FsKeyBatch *b, FsView *view, ArrayType *keys, bool sort)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			nk = view->nkeys;

	get_typlenbyvalalign(ARR_ELEMTYPE(keys), &typlen, &typbyval, &typalign);
	deconstruct_array(keys, ARR_ELEMTYPE(keys), typlen, typbyval, typalign,
					  &elems, &nulls, &n);

	if (nk == 1)
	{
		b->in_vals = elems;
		b->in_nulls = nulls;
	}
	else
	{
		TupleDesc	td = lookup_rowtype_tupdesc(view->key_type, -1);

		if (td->natts != nk)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("key type %s has %d attributes, but entity \"%s\" has %d key columns",
							format_type_be(view->key_type), td->natts,
							view->entity, nk)));
		b->in_vals = palloc(sizeof(Datum) * nk * Max(n, 1));
		b->in_nulls = palloc(sizeof(bool) * nk * Max(n, 1));
		fs_keys_deform_rows(td, elems, nulls, n, b->in_vals, b->in_nulls);
		ReleaseTupleDesc(td);
	}
	fs_keys_build(b, view, b->in_vals, b->in_nulls, nulls, n, sort);
}

/*
 * Sorts (or hashes) and deduplicates n keys already deconstructed into
 * vals/nulls (n x the view's key columns); isnull[i] marks a NULL key.
 * The arrays are kept, not copied.
 */
void
fs_keys_build(FsKeyBatch *b, FsView *view, Datum *vals, bool *keynulls,
			  bool *nulls, int n, bool sort)
{
	int			nk = view->nkeys;
	int		   *order;
	int			norder = 0;
	int			i;

	b->view = view;
	b->nkeycols = nk;
	b->ninput = n;
	b->ndistinct = 0;
	b->in_vals = vals;
	b->in_nulls = keynulls;
	b->in_isnull = nulls;
	b->in_distinct = palloc(sizeof(int) * Max(n, 1));
	b->hashes = NULL;

	order = palloc(sizeof(int) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		usable = !nulls[i];
		int			k;

		for (k = 0; usable && k < nk; k++)
			usable = !b->in_nulls[i * nk + k];
		b->in_distinct[i] = -1;
		if (usable)
			order[norder++] = i;
	}
	b->distinct_input = palloc(sizeof(int) * Max(norder, 1));
	b->sorted = sort;

	if (!sort)
	{
		dedupe_by_hash(b, order, norder);
		pfree(order);
		return;
	}

	if (norder > 1)
		qsort_arg(order, norder, sizeof(int), input_cmp, b);

	for (i = 0; i < norder; i++)
	{
		int			in = order[i];

		if (i == 0 ||
			fs_keys_compare(view, &b->in_vals[in * nk],
							&b->in_vals[b->distinct_input[b->ndistinct - 1] * nk]) != 0)
			b->distinct_input[b->ndistinct++] = in;
		b->in_distinct[in] = b->ndistinct - 1;
	}
	pfree(order);
}

/*
 * Deduplicates the usable inputs with a simplehash table of the distinct
 * keys seen so far (keyed by an input that holds the key, compared with
 * the primary key's comparison, the low 32 bits of the key hash stored);
 * distinct keys come out in order of first appearance, hashed.
 */
static void
dedupe_by_hash(FsKeyBatch *b, const int *inputs, int n)
{
	keyset_hash *set = keyset_create(CurrentMemoryContext, Max(n, 1), b);
	int			i;

	b->hashes = palloc(sizeof(uint64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int			in = inputs[i];
		uint64		h = fs_key_hash(b->view, BATCH_KEY(b, in));
		bool		found;
		KeySlot    *slot = keyset_insert_hash(set, in, (uint32) h, &found);

		if (!found)
		{
			int			d = b->ndistinct++;

			slot->distinct = d;
			b->distinct_input[d] = in;
			b->hashes[d] = h;
		}
		b->in_distinct[in] = slot->distinct;
	}
	keyset_destroy(set);
}

static int
distinct_cmp(const void *pa, const void *pb, void *arg)
{
	FsKeyBatch *b = (FsKeyBatch *) arg;

	return fs_keys_compare(b->view, FS_KEY_VALUES(b, *(const int *) pa),
						   FS_KEY_VALUES(b, *(const int *) pb));
}

/* Sorts a list of distinct-key indexes into key order (unless already). */
void
fs_keys_sort_subset(FsKeyBatch *b, int *which, int n)
{
	if (!b->sorted && n > 1)
		qsort_arg(which, n, sizeof(int), distinct_cmp, b);
}

/* 64-bit hash of one key (all key columns). */
uint64
fs_key_hash(FsView *view, const Datum *vals)
{
	uint64		h = FS_KEY_HASH_SEED;
	int			k;

	for (k = 0; k < view->nkeys; k++)
	{
		uint64		hk = DatumGetUInt64(FunctionCall2Coll(&view->key_hash[k],
														  view->cols[k].collation,
														  vals[k],
														  UInt64GetDatum(FS_KEY_HASH_SEED)));

		h = hash_combine64(h, hk);
	}
	return h;
}

/* Hashes every distinct key of a batch. */
void
fs_keys_hash(FsKeyBatch *b)
{
	int			d;

	if (b->hashes)
		return;
	b->hashes = palloc(sizeof(uint64) * Max(b->ndistinct, 1));
	for (d = 0; d < b->ndistinct; d++)
		b->hashes[d] = fs_key_hash(b->view, FS_KEY_VALUES(b, d));
}
