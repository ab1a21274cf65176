/*
 * keys.h
 *		A batch of lookup keys: the input keys of one fs_get_many call,
 *		deconstructed once, sorted and deduplicated with the online primary
 *		key's own comparison, and hashed for the cache.
 *
 * Key values are not copied: they point into the caller's key array, which
 * must outlive the batch.  All per-key arrays are single allocations.
 *
 * Dependency direction: keys/ uses catalog/ (the view's key columns) and
 * util/; cache/, shard/, apply/, online/ and training/ use it from above.
 */
#ifndef FS_KEYS_H
#define FS_KEYS_H

#include "utils/array.h"

#include "catalog/metadata.h"

typedef struct FsKeyBatch
{
	FsView	   *view;
	int			nkeycols;
	int			ninput;
	int			ndistinct;
	Datum	   *in_vals;		/* ninput x nkeycols */
	bool	   *in_nulls;		/* ninput x nkeycols */
	bool	   *in_isnull;		/* ninput: the whole key is NULL */
	int		   *in_distinct;	/* ninput: distinct index, or -1 */
	int		   *distinct_input; /* ndistinct: an input holding that key */
	uint64	   *hashes;			/* ndistinct, once fs_keys_hash ran */
	bool		sorted;			/* distinct keys are in key order */
} FsKeyBatch;

/* the key columns of distinct key d */
#define FS_KEY_VALUES(b, d) (&(b)->in_vals[(b)->distinct_input[d] * (b)->nkeycols])

extern void fs_keys_deform_rows(TupleDesc td, Datum *elems, bool *nulls, int n,
								Datum *vals, bool *isnull);
extern void fs_keys_from_array(FsKeyBatch *batch, FsView *view, ArrayType *keys,
							   bool sort);
extern void fs_keys_build(FsKeyBatch *batch, FsView *view, Datum *vals,
						  bool *keynulls, bool *nulls, int n, bool sort);
extern void fs_keys_sort_subset(FsKeyBatch *batch, int *which, int n);
extern void fs_keys_hash(FsKeyBatch *batch);
extern int	fs_keys_compare(FsView *view, const Datum *a, const Datum *b);
extern uint64 fs_key_hash(FsView *view, const Datum *vals);

#endif							/* FS_KEYS_H */
