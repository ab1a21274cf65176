"""Decoding of fs_get_many_packed() answers with numpy.

The layout is the one of include/fstore_packed.h (docs/packed.md): a header
naming the features and their type codes, then one record per requested key
in request order.  A record is one status byte (0: no value) or, when
present, the status byte, an int64 event_ts, the NULL bits and the non-NULL
values.  Records are not aligned and their length depends on their status
and NULL bits, so the decoder first finds where each record starts (one
pass over the records, reading two bytes of each; a single strided view
when every record is complete) and then extracts every feature of every
record with vectorised numpy gathers: no Python work per value.
"""

import functools
import struct

import numpy as np

MAGIC = b"FSP1"
HEADER_FIXED = 24

BOOL, INT2, INT4, INT8, FLOAT4, FLOAT8 = 1, 2, 3, 4, 5, 6
DATE, TIMESTAMP, TIMESTAMPTZ = 7, 8, 9
BYTES = 16
FLOAT4_ARRAY, FLOAT8_ARRAY, INT4_ARRAY, INT8_ARRAY = 32, 33, 34, 35

# fixed-size type codes: (size in bytes, numpy kind)
_FIXED = {
    BOOL: (1, "u1"),
    INT2: (2, "i2"),
    INT4: (4, "i4"),
    INT8: (8, "i8"),
    FLOAT4: (4, "f4"),
    FLOAT8: (8, "f8"),
    DATE: (4, "i4"),
    TIMESTAMP: (8, "i8"),
    TIMESTAMPTZ: (8, "i8"),
}
# the codes a numeric matrix can hold
_NUMERIC = (BOOL, INT2, INT4, INT8, FLOAT4, FLOAT8)

_CODE_NAMES = {
    BOOL: "boolean", INT2: "smallint", INT4: "integer", INT8: "bigint",
    FLOAT4: "real", FLOAT8: "double precision", DATE: "date",
    TIMESTAMP: "timestamp", TIMESTAMPTZ: "timestamp with time zone",
    BYTES: "text/bytea", FLOAT4_ARRAY: "real[]", FLOAT8_ARRAY: "double precision[]",
    INT4_ARRAY: "integer[]", INT8_ARRAY: "bigint[]",
}


class PackedFormatError(ValueError):
    """The buffer is not a well-formed fs_get_many_packed answer."""


class Header:
    """The header of a packed answer."""

    __slots__ = ("byteorder", "nrecords", "names", "codes", "size")

    def __init__(self, byteorder, nrecords, names, codes, size):
        self.byteorder = byteorder
        self.nrecords = nrecords
        self.names = names
        self.codes = codes
        self.size = size


def parse_header(buf):
    """Parses the header of a packed answer (bytes or memoryview)."""
    mv = buf if isinstance(buf, bytes) else bytes(buf)
    n = len(mv)
    if n < HEADER_FIXED or bytes(mv[0:4]) != MAGIC:
        raise PackedFormatError("not an fs_get_many_packed answer")
    bom = bytes(mv[4:8])
    if bom == b"\x04\x03\x02\x01":
        bo = "<"
    elif bom == b"\x01\x02\x03\x04":
        bo = ">"
    else:
        raise PackedFormatError("bad byte order mark")
    nrecords, nfeatures, _flags, hsize = struct.unpack_from(bo + "IHHI", mv, 8)
    if hsize > n or hsize < HEADER_FIXED:
        raise PackedFormatError("bad header size")
    names, codes = [], []
    pos = HEADER_FIXED
    for _ in range(nfeatures):
        if pos + 4 > hsize:
            raise PackedFormatError("truncated header")
        code = mv[pos]
        (nl,) = struct.unpack_from(bo + "H", mv, pos + 2)
        if pos + 4 + nl > hsize:
            raise PackedFormatError("truncated header")
        names.append(bytes(mv[pos + 4:pos + 4 + nl]).decode("utf-8"))
        codes.append(code)
        pos += 4 + nl
    return Header(bo, nrecords, names, codes, hsize)


@functools.lru_cache(maxsize=64)
def _value_bytes_tables(sizes):
    """Per NULL-bits byte j, for each of its 256 values, the bytes the
    non-NULL values of features 8j..8j+7 take."""
    tables = []
    for j in range((len(sizes) + 7) // 8):
        group = sizes[8 * j:8 * j + 8]
        tables.append([sum(s for i, s in enumerate(group) if not bits & (1 << i))
                       for bits in range(256)])
    return tables


def _record_starts(b, h, sizes):
    """Offsets of the records and their presence, for fixed-size features.

    b is the answer as bytes.  A present record without NULLs has the
    length `full`; when the body is exactly nrecords such records, they
    are all of that kind (a record is never longer) and no pass is needed.
    """
    n = h.nrecords
    nf = len(sizes)
    nb = (nf + 7) // 8
    full = 1 + 8 + nb + int(sum(sizes))
    total = len(b)
    if total - h.size == n * full:
        starts = h.size + full * np.arange(n, dtype=np.int64)
        return starts, np.ones(n, dtype=bool)

    tables = _value_bytes_tables(tuple(sizes))
    base = 1 + 8 + nb
    starts = [0] * n
    present = [False] * n
    pos = h.size
    try:
        if nb == 1:
            t0 = tables[0]
            for i in range(n):
                starts[i] = pos
                if b[pos]:
                    present[i] = True
                    pos += base + t0[b[pos + 9]]
                else:
                    pos += 1
        else:
            for i in range(n):
                starts[i] = pos
                if b[pos]:
                    present[i] = True
                    ln = base
                    for j in range(nb):
                        ln += tables[j][b[pos + 9 + j]]
                    pos += ln
                else:
                    pos += 1
    except IndexError:
        raise PackedFormatError("truncated answer") from None
    if pos > total:
        raise PackedFormatError("truncated answer")
    return np.array(starts, dtype=np.int64), np.array(present, dtype=bool)


def decode_columns(buf, header=None):
    """Decodes an answer whose features all have a fixed size.

    Returns (header, present, event_ts, columns, nulls): present is a bool
    array per record, event_ts an int64 array (microseconds since
    2000-01-01 UTC; 0 where absent), columns a list of one numpy array per
    feature (in the server's type: u1 for boolean, i2/i4/i8, f4/f8, i4
    days for date, i8 microseconds for timestamps; 0 where missing), and
    nulls a bool array (records x features), True where the feature has
    no value (absent record or NULL).
    """
    h = header or parse_header(buf)
    for name, code in zip(h.names, h.codes):
        if code not in _FIXED:
            raise TypeError("feature \"%s\" is %s, which has no fixed size; use get_many()"
                            % (name, _CODE_NAMES.get(code, "type code %d" % code)))
    sizes = [_FIXED[c][0] for c in h.codes]
    b = buf if isinstance(buf, bytes) else bytes(buf)
    arr = np.frombuffer(b, dtype=np.uint8)
    n, nf = h.nrecords, len(sizes)
    nb = (nf + 7) // 8
    bo = h.byteorder
    starts, present = _record_starts(b, h, sizes)

    nulls = np.ones((n, nf), dtype=bool)
    event_ts = np.zeros(n, dtype=np.int64)
    columns = [np.zeros(n, dtype=bo + _FIXED[c][1]) for c in h.codes]
    if n == 0:
        return h, present, event_ts, columns, nulls

    full = 1 + 8 + nb + int(sum(sizes))
    if present.all() and (len(b) - h.size == n * full):
        # every record complete: one strided view over the body
        body = arr[h.size:].reshape(n, full)
        if (body[:, 0] != 1).any() or (nb and body[:, 9:9 + nb].any()):
            raise PackedFormatError("malformed record")
        event_ts = np.ascontiguousarray(body[:, 1:9]).view(bo + "i8").ravel().astype(np.int64)
        off = 9 + nb
        if len(set(h.codes)) == 1:
            block = np.ascontiguousarray(body[:, off:]).view(bo + _FIXED[h.codes[0]][1])
            columns = [block[:, f] for f in range(nf)]
        else:
            for f, s in enumerate(sizes):
                columns[f] = np.ascontiguousarray(body[:, off:off + s]).view(
                    bo + _FIXED[h.codes[f]][1]).ravel()
                off += s
        nulls[:] = False
        return h, present, event_ts, columns, nulls

    pidx = np.flatnonzero(present)
    p = starts[pidx]
    if len(p) and nf == 0:
        if (arr[p] != 1).any():
            raise PackedFormatError("malformed record")
        ts = arr[p[:, None] + np.arange(1, 9)]
        event_ts[pidx] = np.ascontiguousarray(ts).view(bo + "i8").ravel()
    elif len(p):
        if (arr[p] != 1).any():
            raise PackedFormatError("malformed record")
        ts = arr[p[:, None] + np.arange(1, 9)]
        event_ts[pidx] = np.ascontiguousarray(ts).view(bo + "i8").ravel()
        nullbytes = arr[p[:, None] + 9 + np.arange(nb)]
        pn = np.unpackbits(nullbytes, axis=1, bitorder="little")[:, :nf].astype(bool)
        nulls[pidx] = pn
        size_arr = np.array(sizes, dtype=np.int64)
        contrib = np.where(pn, 0, size_arr)
        offs = p[:, None] + (9 + nb) + np.cumsum(contrib, axis=1) - contrib
        # one gather of the value bytes of every present record: byte i of
        # feature f is at offs[:, f] + i, for i below the largest size (a
        # NULL or shorter feature's extra bytes are read from what follows,
        # then discarded; clipped so they cannot point past the end)
        width = max(sizes)
        idx = offs[:, :, None] + np.arange(width)
        np.minimum(idx, len(b) - 1, out=idx)
        raw = arr[idx]                       # present records x features x width
        same = len(set(h.codes)) == 1
        if same:
            block = raw.view(bo + _FIXED[h.codes[0]][1])[:, :, 0]
        for f, s in enumerate(sizes):
            if same:
                v = block[:, f]
            else:
                v = np.ascontiguousarray(raw[:, f, :s]).view(bo + _FIXED[h.codes[f]][1])[:, 0]
            col = columns[f]
            col[pidx] = v
            col[nulls[:, f]] = 0
    return h, present, event_ts, columns, nulls


def to_matrix(buf, dtype="float32", missing=np.nan, return_present=False):
    """Decodes a packed answer of scalar numeric/boolean features into a
    (keys x features) matrix; missing keys and NULL features are `missing`.
    """
    buf = buf if isinstance(buf, bytes) else bytes(buf)
    h = parse_header(buf)
    for name, code in zip(h.names, h.codes):
        if code not in _NUMERIC:
            raise TypeError("feature \"%s\" is %s: a matrix holds numeric and boolean "
                            "features only; use get_many()"
                            % (name, _CODE_NAMES.get(code, "type code %d" % code)))
    dt = np.dtype(dtype)
    if isinstance(missing, float) and np.isnan(missing) and dt.kind not in "fc":
        raise ValueError("missing values cannot be NaN in a %s matrix: pass missing=" % dt)
    h, present, _ts, cols, nulls = decode_columns(buf, h)
    n, nf = h.nrecords, len(h.codes)
    out = np.empty((n, nf), dtype=dt)
    for f in range(nf):
        out[:, f] = cols[f]
    if nulls.any():
        out[nulls] = missing
    if return_present:
        return out, list(h.names), present
    return out, list(h.names)
