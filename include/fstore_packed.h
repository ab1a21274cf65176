/*
 * fstore_packed.h
 *		Decoder for the answers of fs_get_many_packed(), for client programs.
 *
 * Header-only C99, no dependency on PostgreSQL.  An answer is one
 * bytea: a header, then one record per requested key, in request order.
 *
 *   header
 *     0  char[4]  magic "FSP1"
 *     4  uint32   byte order mark 0x01020304, in the server's byte order;
 *                 every integer and float below uses that same order
 *     8  uint32   number of records (= keys requested)
 *    12  uint16   number of features
 *    14  uint16   flags, 0
 *    16  uint32   header size: offset of the first record
 *    20  uint32   reserved, 0
 *    24  per feature: uint8 type code (FSP_*), uint8 0, uint16 name length,
 *        the name's bytes (UTF-8, no terminator); then zero bytes up to
 *        the header size (a multiple of 8)
 *
 *   record
 *     uint8  status: 0 no value (key missing, expired by the view's ttl, or
 *            a NULL key), 1 present
 *     if present:
 *       int64  event_ts, microseconds since 2000-01-01 00:00 UTC
 *       uint8  null bits, (features + 7) / 8 bytes: bit i%8 of byte i/8
 *              set means feature i is NULL
 *       then each non-NULL feature, in order:
 *         FSP_BOOL 1 byte; FSP_INT2 2; FSP_INT4, FSP_FLOAT4, FSP_DATE 4;
 *         FSP_INT8, FSP_FLOAT8, FSP_TIMESTAMP, FSP_TIMESTAMPTZ 8 bytes;
 *         FSP_BYTES: uint32 length, then the bytes (text in the database's
 *         encoding, as stored);
 *         FSP_*_ARRAY: uint32 element count, then the elements.
 *
 * Records are not aligned: read fields with memcpy (as this decoder does).
 * The decoder checks every length against the buffer, so a truncated or
 * corrupt answer gives -1, never a read past its end.
 * For a feature service, a record is present when any of its views has a
 * value for the key; event_ts is the newest of those views' event_ts, and
 * the features of views without a value are NULL.
 */
#ifndef FSTORE_PACKED_H
#define FSTORE_PACKED_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FSP_MAGIC "FSP1"
#define FSP_BYTE_ORDER_MARK 0x01020304u
#define FSP_HEADER_FIXED 24

enum
{
	FSP_BOOL = 1,
	FSP_INT2 = 2,
	FSP_INT4 = 3,
	FSP_INT8 = 4,
	FSP_FLOAT4 = 5,
	FSP_FLOAT8 = 6,
	FSP_DATE = 7,
	FSP_TIMESTAMP = 8,
	FSP_TIMESTAMPTZ = 9,
	FSP_BYTES = 16,
	FSP_FLOAT4_ARRAY = 32,
	FSP_FLOAT8_ARRAY = 33,
	FSP_INT4_ARRAY = 34,
	FSP_INT8_ARRAY = 35
};

#define FSP_MAX_FEATURES 1024

/* Size in bytes of a fixed-size value of a type code; 0 if variable. */
static inline size_t
fsp_fixed_size(uint8_t code)
{
	switch (code)
	{
		case FSP_BOOL: return 1;
		case FSP_INT2: return 2;
		case FSP_INT4: case FSP_FLOAT4: case FSP_DATE: return 4;
		case FSP_INT8: case FSP_FLOAT8: case FSP_TIMESTAMP: case FSP_TIMESTAMPTZ: return 8;
		default: return 0;
	}
}

/* Element size of an array type code; 0 if not an array. */
static inline size_t
fsp_elem_size(uint8_t code)
{
	switch (code)
	{
		case FSP_FLOAT4_ARRAY: case FSP_INT4_ARRAY: return 4;
		case FSP_FLOAT8_ARRAY: case FSP_INT8_ARRAY: return 8;
		default: return 0;
	}
}

typedef struct fsp_reader
{
	const uint8_t *buf;
	size_t		len;
	size_t		pos;			/* next record */
	uint32_t	nrecords;
	uint32_t	next;			/* index of the next record */
	uint16_t	nfeatures;
	uint8_t		codes[FSP_MAX_FEATURES];
	const char *names[FSP_MAX_FEATURES];
	uint16_t	name_len[FSP_MAX_FEATURES];
} fsp_reader;

typedef struct fsp_record
{
	int			present;
	int64_t		event_ts;
	const uint8_t *nullbits;
	/* per feature: pointer to the value (after any length prefix) and its
	 * length in bytes (element count for arrays in *count) */
	const uint8_t *value[FSP_MAX_FEATURES];
	uint32_t	count[FSP_MAX_FEATURES];
} fsp_record;

static inline uint32_t
fsp_u32(const uint8_t *p)
{
	uint32_t	v;

	memcpy(&v, p, 4);
	return v;
}

/* Parses the header.  Returns 0, or -1 if the buffer is not an answer. */
static inline int
fsp_open(fsp_reader *r, const void *buf, size_t len)
{
	const uint8_t *b = (const uint8_t *) buf;
	size_t		pos = FSP_HEADER_FIXED;
	uint16_t	nf;
	uint32_t	hsize;
	uint16_t	i;

	if (len < FSP_HEADER_FIXED || memcmp(b, FSP_MAGIC, 4) != 0 ||
		fsp_u32(b + 4) != FSP_BYTE_ORDER_MARK)
		return -1;
	memcpy(&nf, b + 12, 2);
	hsize = fsp_u32(b + 16);
	if (nf > FSP_MAX_FEATURES || hsize > len || hsize < FSP_HEADER_FIXED)
		return -1;
	r->buf = b;
	r->len = len;
	r->nrecords = fsp_u32(b + 8);
	r->nfeatures = nf;
	for (i = 0; i < nf; i++)
	{
		uint16_t	nl;

		if (pos + 4 > hsize)
			return -1;
		r->codes[i] = b[pos];
		memcpy(&nl, b + pos + 2, 2);
		if (pos + 4 + nl > hsize)
			return -1;
		r->names[i] = (const char *) b + pos + 4;
		r->name_len[i] = nl;
		pos += 4 + nl;
	}
	r->pos = hsize;
	r->next = 0;
	return 0;
}

/*
 * Reads the next record.  Returns 1 with *rec filled, 0 after the last
 * record, -1 if the buffer is truncated or malformed.
 */
static inline int
fsp_next(fsp_reader *r, fsp_record *rec)
{
	const uint8_t *b = r->buf;
	size_t		pos = r->pos;
	size_t		nb = ((size_t) r->nfeatures + 7) / 8;
	uint16_t	i;

	if (r->next >= r->nrecords)
		return 0;
	if (pos + 1 > r->len)
		return -1;
	rec->present = b[pos++];
	rec->event_ts = 0;
	rec->nullbits = NULL;
	if (!rec->present)
		memset(rec->value, 0, sizeof(rec->value[0]) * r->nfeatures);
	if (rec->present)
	{
		if (pos + 8 + nb > r->len)
			return -1;
		memcpy(&rec->event_ts, b + pos, 8);
		rec->nullbits = b + pos + 8;
		pos += 8 + nb;
		for (i = 0; i < r->nfeatures; i++)
		{
			size_t		fs = fsp_fixed_size(r->codes[i]);
			size_t		n;

			if (rec->nullbits[i / 8] & (1u << (i % 8)))
			{
				rec->value[i] = NULL;
				rec->count[i] = 0;
				continue;
			}
			if (fs > 0)
				n = fs;
			else
			{
				size_t		es = fsp_elem_size(r->codes[i]);

				if (pos + 4 > r->len)
					return -1;
				rec->count[i] = fsp_u32(b + pos);
				pos += 4;
				/* checked by division: the product could overflow */
				if ((size_t) rec->count[i] > (r->len - pos) / (es ? es : 1))
					return -1;
				n = es ? (size_t) rec->count[i] * es : rec->count[i];
			}
			if (n > r->len - pos)
				return -1;
			rec->value[i] = b + pos;
			if (fs > 0)
				rec->count[i] = 1;
			pos += n;
		}
	}
	r->pos = pos;
	r->next++;
	return 1;
}

/* A scalar numeric or boolean feature as a double. */
static inline double
fsp_as_double(uint8_t code, const uint8_t *p)
{
	switch (code)
	{
		case FSP_BOOL: return p[0] ? 1.0 : 0.0;
		case FSP_INT2: { int16_t v; memcpy(&v, p, 2); return v; }
		case FSP_INT4: { int32_t v; memcpy(&v, p, 4); return v; }
		case FSP_INT8: { int64_t v; memcpy(&v, p, 8); return (double) v; }
		case FSP_FLOAT4: { float v; memcpy(&v, p, 4); return v; }
		case FSP_FLOAT8: { double v; memcpy(&v, p, 8); return v; }
		default: return 0.0;
	}
}

/*
 * Decodes an answer whose features are all scalar numbers into a
 * row-major float matrix out[records][features]; NULL features and absent
 * records become "missing".  Returns the number of records, or -1 if the
 * answer is malformed, has other types, or does not fit in cap floats.
 * Uses about 20kB of stack.
 */
static inline long
fsp_decode_float_matrix(const void *buf, size_t len, float *out, size_t cap,
						float missing)
{
	fsp_reader	r;
	fsp_record	rec;
	size_t		row = 0;
	int			rc;
	uint16_t	i;

	if (fsp_open(&r, buf, len) != 0)
		return -1;
	for (i = 0; i < r.nfeatures; i++)
		if (fsp_fixed_size(r.codes[i]) == 0 || r.codes[i] == FSP_DATE ||
			r.codes[i] == FSP_TIMESTAMP || r.codes[i] == FSP_TIMESTAMPTZ)
			return -1;
	if ((size_t) r.nrecords * r.nfeatures > cap)
		return -1;

	/* all float4: a present record without NULLs is copied as it is */
	for (i = 0; i < r.nfeatures && r.codes[i] == FSP_FLOAT4; i++)
		;
	if (i == r.nfeatures)
	{
		const uint8_t *b = r.buf;
		size_t		pos = r.pos;
		size_t		nb = ((size_t) r.nfeatures + 7) / 8;
		size_t		vb = (size_t) r.nfeatures * 4;

		for (row = 0; row < r.nrecords; row++)
		{
			float	   *o = out + row * r.nfeatures;
			size_t		j;
			int			nonull = 1;

			if (pos + 1 > len)
				return -1;
			if (!b[pos++])
			{
				for (i = 0; i < r.nfeatures; i++)
					o[i] = missing;
				continue;
			}
			if (pos + 8 + nb > len)
				return -1;
			for (j = 0; j < nb; j++)
				nonull &= b[pos + 8 + j] == 0;
			if (nonull)
			{
				if (pos + 8 + nb + vb > len)
					return -1;
				memcpy(o, b + pos + 8 + nb, vb);
				pos += 8 + nb + vb;
				continue;
			}
			{
				const uint8_t *nulls = b + pos + 8;

				pos += 8 + nb;
				for (i = 0; i < r.nfeatures; i++)
				{
					if (nulls[i / 8] & (1u << (i % 8)))
						o[i] = missing;
					else
					{
						if (pos + 4 > len)
							return -1;
						memcpy(&o[i], b + pos, 4);
						pos += 4;
					}
				}
			}
		}
		return (long) row;
	}

	while ((rc = fsp_next(&r, &rec)) == 1)
	{
		float	   *o = out + row * r.nfeatures;

		for (i = 0; i < r.nfeatures; i++)
			o[i] = (rec.present && rec.value[i]) ?
				(float) fsp_as_double(r.codes[i], rec.value[i]) : missing;
		row++;
	}
	return rc < 0 ? -1 : (long) row;
}

#endif							/* FSTORE_PACKED_H */
