/*
 * packed.h
 *		Encoder of the fs_get_many_packed layout (include/fstore_packed.h
 *		documents it and decodes it on the client side).
 *
 * Dependency direction: a leaf (util/); PostgreSQL only.  online/ (reads),
 * aggregate/ and cache/ (the pack plan) use it.
 */
#ifndef FS_PACKED_H
#define FS_PACKED_H

#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

typedef struct FsPacker
{
	StringInfoData buf;			/* starts with a varlena header */
	int			nfeatures;
	int			nullbytes;
	uint8	   *codes;
	int		   *fixed;			/* bytes of each fixed-size feature, else 0 */
	int			fixed_total;
} FsPacker;

extern void fs_packer_begin(FsPacker *pk, MemoryContext cxt, int nkeys,
							int nfeatures, const char **names, const Oid *types);
extern void fs_packer_absent(FsPacker *pk);
extern void fs_packer_row(FsPacker *pk, TimestampTz ts, const Datum *vals,
						  const bool *nulls, const int *attoff);
extern void fs_packer_reserve(FsPacker *pk, Size bytes);
extern void fs_packer_copy(FsPacker *pk, const char *record, uint32 len);
extern bytea *fs_packer_finish(FsPacker *pk);

/*
 * A recipe that turns a stored online row straight into its packed record
 * by copying bytes: usable when event_ts and every feature have a fixed
 * size and sit at fixed offsets of a row without NULLs (then the bytes in
 * the row are the bytes of the record).  Rows with NULLs, and views with
 * variable-size columns before a feature, go through the general path.
 */
#define FS_PACK_MAX_RUNS 32

typedef struct FsPackPlan
{
	bool		usable;
	int16		min_natts;		/* the row must have at least these */
	uint32		ts_off;			/* of event_ts, from the row's data start */
	uint32		reclen;			/* bytes of a present record */
	int			nullbytes;
	int			nruns;
	uint32		run_src[FS_PACK_MAX_RUNS];	/* runs of adjacent features */
	uint32		run_len[FS_PACK_MAX_RUNS];
} FsPackPlan;

extern void fs_pack_plan(FsPackPlan *plan, TupleDesc desc, AttrNumber ts_attnum,
						 int nfeatures, const AttrNumber *attnums, const Oid *types);

/*
 * Writes the packed record of a stored row to dst (plan->reclen bytes) and
 * returns true, or returns false when the plan does not apply to this row.
 */
static inline bool
fs_pack_from_tuple(const FsPackPlan *plan, HeapTupleHeader t, char *dst)
{
	const char *data;
	int			i;

	if (!plan->usable || (t->t_infomask & HEAP_HASNULL) ||
		HeapTupleHeaderGetNatts(t) < plan->min_natts)
		return false;
	data = (const char *) t + t->t_hoff;
	dst[0] = 1;
	memcpy(dst + 1, data + plan->ts_off, 8);
	dst += 9;
	memset(dst, 0, plan->nullbytes);
	dst += plan->nullbytes;
	for (i = 0; i < plan->nruns; i++)
	{
		memcpy(dst, data + plan->run_src[i], plan->run_len[i]);
		dst += plan->run_len[i];
	}
	return true;
}

#endif							/* FS_PACKED_H */
