/*
 * packed.h
 *		Encoder of the fs_get_many_packed layout (include/fstore_packed.h
 *		documents it and decodes it on the client side).
 */
#ifndef FS_PACKED_H
#define FS_PACKED_H

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
extern bytea *fs_packer_finish(FsPacker *pk);

#endif							/* FS_PACKED_H */
