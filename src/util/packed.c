/*
 * packed.c
 *		Encoder of fs_get_many_packed answers.
 *
 * The layout is defined in include/fstore_packed.h, which the server code
 * includes for the type codes so that both sides share one definition.
 * Values are copied in their native binary form; each record's room is
 * reserved once, so fixed-size features cost one copy each.
 */
#include "postgres.h"

#include "access/tupmacs.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "fstore_packed.h"
#include "util/packed.h"

static uint8
type_code(Oid type)
{
	switch (type)
	{
		case BOOLOID: return FSP_BOOL;
		case INT2OID: return FSP_INT2;
		case INT4OID: return FSP_INT4;
		case INT8OID: return FSP_INT8;
		case FLOAT4OID: return FSP_FLOAT4;
		case FLOAT8OID: return FSP_FLOAT8;
		case DATEOID: return FSP_DATE;
		case TIMESTAMPOID: return FSP_TIMESTAMP;
		case TIMESTAMPTZOID: return FSP_TIMESTAMPTZ;
		case TEXTOID: case VARCHAROID: case BPCHAROID: case BYTEAOID: return FSP_BYTES;
		case FLOAT4ARRAYOID: return FSP_FLOAT4_ARRAY;
		case FLOAT8ARRAYOID: return FSP_FLOAT8_ARRAY;
		case INT4ARRAYOID: return FSP_INT4_ARRAY;
		case INT8ARRAYOID: return FSP_INT8_ARRAY;
		default: return 0;
	}
}

void
fs_packer_begin(FsPacker *pk, MemoryContext cxt, int nkeys, int nfeatures,
				const char **names, const Oid *types)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	uint32		u32;
	uint16		u16;
	int			i;

	if (nfeatures > FSP_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("fs_get_many_packed supports at most %d features", FSP_MAX_FEATURES)));
	pk->nfeatures = nfeatures;
	pk->nullbytes = (nfeatures + 7) / 8;
	pk->codes = palloc(Max(nfeatures, 1));
	pk->fixed = palloc(sizeof(int) * Max(nfeatures, 1));
	pk->fixed_total = 0;
	for (i = 0; i < nfeatures; i++)
	{
		pk->codes[i] = type_code(types[i]);
		if (pk->codes[i] == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("fs_get_many_packed cannot pack feature \"%s\" of type %s",
							names[i], format_type_be(types[i])),
					 errhint("Packed answers hold booleans, integers, floats, dates, timestamps, text, bytea and one-dimensional float or integer arrays; use fs_get_many for other types.")));
		pk->fixed[i] = (int) fsp_fixed_size(pk->codes[i]);
		pk->fixed_total += pk->fixed[i];
	}

	initStringInfo(&pk->buf);
	enlargeStringInfo(&pk->buf, VARHDRSZ + FSP_HEADER_FIXED + nfeatures * 72 +
					  (Size) nkeys * (1 + 8 + pk->nullbytes + pk->fixed_total));
	pk->buf.len = VARHDRSZ;
	appendBinaryStringInfo(&pk->buf, FSP_MAGIC, 4);
	u32 = FSP_BYTE_ORDER_MARK;
	appendBinaryStringInfo(&pk->buf, (char *) &u32, 4);
	u32 = (uint32) nkeys;
	appendBinaryStringInfo(&pk->buf, (char *) &u32, 4);
	u16 = (uint16) nfeatures;
	appendBinaryStringInfo(&pk->buf, (char *) &u16, 2);
	u16 = 0;
	appendBinaryStringInfo(&pk->buf, (char *) &u16, 2);
	u32 = 0;					/* header size, set below */
	appendBinaryStringInfo(&pk->buf, (char *) &u32, 4);
	appendBinaryStringInfo(&pk->buf, (char *) &u32, 4);
	for (i = 0; i < nfeatures; i++)
	{
		uint8		b[2] = {pk->codes[i], 0};

		u16 = (uint16) Min(strlen(names[i]), 0xffff);
		appendBinaryStringInfo(&pk->buf, (char *) b, 2);
		appendBinaryStringInfo(&pk->buf, (char *) &u16, 2);
		appendBinaryStringInfo(&pk->buf, names[i], u16);
	}
	while ((pk->buf.len - VARHDRSZ) % 8 != 0)
		appendStringInfoCharMacro(&pk->buf, '\0');
	u32 = (uint32) (pk->buf.len - VARHDRSZ);
	memcpy(pk->buf.data + VARHDRSZ + 16, &u32, 4);
	MemoryContextSwitchTo(old);
}

void
fs_packer_absent(FsPacker *pk)
{
	appendStringInfoCharMacro(&pk->buf, '\0');
}

/* Appends a variable-size value: a 4-byte count and the bytes. */
static void
put_counted(FsPacker *pk, uint32 count, const void *data, Size bytes)
{
	enlargeStringInfo(&pk->buf, 4 + bytes);
	memcpy(pk->buf.data + pk->buf.len, &count, 4);
	memcpy(pk->buf.data + pk->buf.len + 4, data, bytes);
	pk->buf.len += 4 + bytes;
}

void
fs_packer_row(FsPacker *pk, TimestampTz ts, const Datum *vals,
			  const bool *nulls, const int *attoff)
{
	int			nf = pk->nfeatures;
	int			nulloff;
	char	   *p;
	int			i;

	/* room for the fixed part of the record, reserved once */
	enlargeStringInfo(&pk->buf, 1 + 8 + pk->nullbytes + pk->fixed_total);
	p = pk->buf.data + pk->buf.len;
	*p++ = 1;
	memcpy(p, &ts, 8);
	p += 8;
	nulloff = p - pk->buf.data;	/* an offset: the buffer may move */
	memset(p, 0, pk->nullbytes);
	p += pk->nullbytes;

	for (i = 0; i < nf; i++)
	{
		Datum		v = vals[attoff[i]];

		if (nulls[attoff[i]])
		{
			pk->buf.data[nulloff + i / 8] |= (char) (1 << (i % 8));
			continue;
		}
		if (pk->fixed[i] > 0)
		{
			if (pk->fixed[i] == 8)
			{
				/* by value on 64-bit builds, by reference otherwise */
#if SIZEOF_DATUM == 8
				memcpy(p, &v, 8);
#else
				memcpy(p, DatumGetPointer(v), 8);
#endif
			}
			else
				store_att_byval(p, v, pk->fixed[i]);
			p += pk->fixed[i];
			continue;
		}

		/* a variable-size value: its count, then its bytes */
		pk->buf.len = p - pk->buf.data;
		if (pk->codes[i] == FSP_BYTES)
		{
			struct varlena *t = PG_DETOAST_DATUM_PACKED(v);

			put_counted(pk, VARSIZE_ANY_EXHDR(t), VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		}
		else
		{
			ArrayType  *a = DatumGetArrayTypeP(v);
			int			n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));

			if (ARR_NDIM(a) > 1 || ARR_HASNULL(a))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("fs_get_many_packed cannot pack a multi-dimensional array or one with NULL elements")));
			put_counted(pk, (uint32) n, ARR_DATA_PTR(a),
						(Size) n * fsp_elem_size(pk->codes[i]));
		}
		/* room again for the rest of the fixed part */
		enlargeStringInfo(&pk->buf, pk->fixed_total);
		p = pk->buf.data + pk->buf.len;
	}
	pk->buf.len = p - pk->buf.data;
}

/* Makes room for bytes more of records at once. */
void
fs_packer_reserve(FsPacker *pk, Size bytes)
{
	enlargeStringInfo(&pk->buf, bytes);
}

/* Appends a record made by fs_pack_from_tuple. */
void
fs_packer_copy(FsPacker *pk, const char *record, uint32 len)
{
	enlargeStringInfo(&pk->buf, len);
	memcpy(pk->buf.data + pk->buf.len, record, len);
	pk->buf.len += len;
}

/*
 * Builds the copy recipe for features at attnums (in packed order, of the
 * given types) and event_ts at ts_attnum of rows of desc.
 */
void
fs_pack_plan(FsPackPlan *plan, TupleDesc desc, AttrNumber ts_attnum,
			 int nfeatures, const AttrNumber *attnums, const Oid *types)
{
	uint32		off[MaxTupleAttributeNumber];
	int			nfixed;
	uint32		o = 0;
	int			i;

	memset(plan, 0, sizeof(FsPackPlan));
	plan->nullbytes = (nfeatures + 7) / 8;

	/* offsets of the leading fixed-size attributes of a row without NULLs */
	for (nfixed = 0; nfixed < desc->natts; nfixed++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, nfixed);

		if (att->attlen <= 0)
			break;
		o = att_align_nominal(o, att->attalign);
		off[nfixed] = o;
		o += att->attlen;
	}

	if (ts_attnum < 1 || ts_attnum > nfixed ||
		TupleDescAttr(desc, ts_attnum - 1)->attlen != 8)
		return;
	plan->ts_off = off[ts_attnum - 1];
	plan->min_natts = ts_attnum;
	plan->reclen = 1 + 8 + plan->nullbytes;
	for (i = 0; i < nfeatures; i++)
	{
		int			a = attnums[i];
		uint32		len;

		if (a < 1 || a > nfixed)
			return;
		len = (uint32) fsp_fixed_size(type_code(types[i]));
		if (len == 0 || len != (uint32) TupleDescAttr(desc, a - 1)->attlen)
			return;
		if (plan->nruns > 0 &&
			plan->run_src[plan->nruns - 1] + plan->run_len[plan->nruns - 1] == off[a - 1])
			plan->run_len[plan->nruns - 1] += len;
		else
		{
			if (plan->nruns == FS_PACK_MAX_RUNS)
				return;
			plan->run_src[plan->nruns] = off[a - 1];
			plan->run_len[plan->nruns++] = len;
		}
		plan->min_natts = Max(plan->min_natts, a);
		plan->reclen += len;
	}
	plan->usable = true;
}

bytea *
fs_packer_finish(FsPacker *pk)
{
	SET_VARSIZE(pk->buf.data, pk->buf.len);
	return (bytea *) pk->buf.data;
}
