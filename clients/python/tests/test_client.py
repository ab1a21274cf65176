"""fstore_client against the SQL answers of the same server."""

import datetime as dt
import struct

import numpy as np
import pandas as pd
import psycopg2
import pytest

import fstore_client as fs
from fstore_client import packed


def sql_rows(conn, query, params=None):
    with conn.cursor() as cur:
        cur.execute(query, params)
        return [d.name for d in cur.description], cur.fetchall()


def is_missing(v):
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)) \
        or (isinstance(v, np.floating) and np.isnan(v))


def same(expected, got):
    """A value psycopg2 gives (the SQL answer) against the DataFrame's."""
    if expected is None:
        return is_missing(got)
    if is_missing(got):
        return False
    if isinstance(expected, bool):
        return isinstance(got, (bool, np.bool_)) and bool(got) == expected
    if isinstance(expected, float):
        # a real arrives as its shortest text form: compare as float32
        return got == (np.float32(expected) if isinstance(got, np.float32) else expected)
    if isinstance(expected, dt.datetime):
        return pd.Timestamp(expected) == got
    if isinstance(expected, dt.date):
        return pd.Timestamp(expected) == got
    if isinstance(expected, list):
        return np.array_equal(np.array(expected, dtype=got.dtype), got)
    return expected == got


def assert_frame_matches(conn, df, query, params=None):
    names, rows = sql_rows(conn, query, params)
    assert list(df.columns) == names
    assert len(df) == len(rows)
    for i, row in enumerate(rows):
        for j, name in enumerate(names):
            got = df[name].iloc[i]
            assert same(row[j], got), "row %d column %s: SQL %r, client %r" % (i, name, row[j], got)


KEYS = [42, 7, 42, 99999, None, 2000, 2001, 2002, 1, 1500]


def test_get_many_view_matches_sql(conn):
    df = fs.get_many(conn, "doc_stats", KEYS)
    assert_frame_matches(conn, df,
                         "SELECT * FROM fs_get_many(NULL::fstore_online.doc_stats, %s::bigint[])",
                         (KEYS,))
    # dtypes follow the column types, not the values of this answer
    assert str(df["doc_id"].dtype) == "Int64"
    assert str(df["views_7d"].dtype) == "Int32"
    assert df["ctr"].dtype == np.float32
    assert df["score"].dtype == np.float64
    assert str(df["clicked"].dtype) == "boolean"
    assert str(df["small"].dtype) == "Int16"
    assert str(df["event_ts"].dtype) == "datetime64[ns, UTC]"
    # input order, duplicates repeated, missing and NULL keys
    assert df["doc_id"].tolist()[:4] == [42, 7, 42, 99999]
    assert df["doc_id"].iloc[4] is pd.NA
    assert df["views_7d"].iloc[3] is pd.NA and np.isnan(df["ctr"].iloc[3])
    assert df["event_ts"].iloc[3] is pd.NaT
    assert df["big"].iloc[9] == 1500 * 10000000000


def test_get_many_key_forms(conn):
    ref = fs.get_many(conn, "doc_stats", [3, 4, 5])
    for keys in (np.array([3, 4, 5]), np.array([3, 4, 5], dtype=np.int32),
                 pd.Series([3, 4, 5]), [np.int64(3), np.int16(4), 5], (3, 4, 5),
                 ["3", "4", "5"], [(3,), (4,), (5,)], range(3, 6)):
        pd.testing.assert_frame_equal(fs.get_many(conn, "doc_stats", keys), ref)
    # NaN in a float key column (a pandas column with holes) is a NULL key
    df = fs.get_many(conn, "doc_stats", pd.Series([3.0, np.nan]).astype(object))
    assert df["doc_id"].iloc[1] is pd.NA


def test_get_many_empty(conn):
    df = fs.get_many(conn, "doc_stats", [])
    assert len(df) == 0
    assert list(df.columns)[:2] == ["doc_id", "views_7d"]
    m, names = fs.get_many_matrix(conn, "doc_stats", np.array([], dtype=np.int64))
    assert m.shape == (0, 10) and names[0] == "views_7d"


def test_ttl_expired_keys(conn):
    keys = list(range(8, 32))
    df = fs.get_many(conn, "doc_activity", keys)
    assert_frame_matches(conn, df,
                         "SELECT * FROM fs_get_many(NULL::fstore_online.doc_activity, %s::bigint[])",
                         (keys,))
    fresh = df[df["doc_id"].between(10, 19)]
    assert fresh["opens_1h"].notna().all()
    expired = df[df["doc_id"].between(20, 29)]
    assert expired["opens_1h"].isna().all() and expired["event_ts"].isna().all()
    m, names = fs.get_many_matrix(conn, "doc_activity", keys)
    assert names == ["opens_1h"]
    for i, k in enumerate(keys):
        if 10 <= k <= 19:
            assert m[i, 0] == k * 3
        else:
            assert np.isnan(m[i, 0])


def test_composite_keys(conn):
    keys = [(1, "a"), (1, "b"), (2, "a"), (3, "z"), None, (2, "a")]
    df = fs.get_many(conn, "ud", keys)
    assert_frame_matches(conn, df,
                         "SELECT * FROM fs_get_many(NULL::fstore_online.ud, %s::fstore.user_doc_key[])",
                         (keys,))
    assert list(df.columns) == ["user_id", "doc_id", "clicks", "affinity", "event_ts"]
    for form in (np.array([(1, "a"), (1, "b")], dtype=object),
                 [[1, "a"], [1, "b"]],
                 [{"user_id": 1, "doc_id": "a"}, {"doc_id": "b", "user_id": 1}],
                 pd.DataFrame({"user_id": [1, 1], "doc_id": ["a", "b"]}),
                 np.array([(1, "a"), (1, "b")], dtype=[("u", "i8"), ("d", "U4")])):
        pd.testing.assert_frame_equal(fs.get_many(conn, "ud", form), df.iloc[:2])
    m, names = fs.get_many_matrix(conn, "ud", keys)
    assert names == ["clicks", "affinity"]
    expect = np.array([[3, 0.5], [np.nan, 0.25], [7, np.nan], [np.nan, np.nan],
                       [np.nan, np.nan], [7, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(m, expect)
    with pytest.raises(ValueError, match="tuple of 2 values"):
        fs.get_many(conn, "ud", [(1, "a", 3)])
    with pytest.raises(ValueError, match="tuple of 2 values"):
        fs.get_many(conn, "ud", [1])


def test_text_keys_and_quotes(conn):
    keys = ["/b'q", "/a", "/missing"]
    df = fs.get_many(conn, "page_stats", keys)
    assert_frame_matches(conn, df,
                         "SELECT * FROM fs_get_many(NULL::fstore_online.page_stats, %s::text[])",
                         (keys,))
    assert df["hits"].tolist()[:2] == [20, 10]
    with pytest.raises(TypeError):
        fs.get_many(conn, "page_stats", "/a")


def test_service(conn):
    keys = [15, 25, 7, 123456]
    df = fs.get_many(conn, "ranker", keys)
    assert_frame_matches(conn, df,
                         "SELECT * FROM fs_get_many(NULL::fstore_online.ranker, %s::bigint[])",
                         (keys,))
    m, names = fs.get_many_matrix(conn, "ranker", keys)
    assert names == ["views_7d", "ctr", "opens"]
    assert m[0, 2] == 45 and np.isnan(m[1, 2]) and np.isnan(m[3]).all()


def test_arrays_text_timestamps(conn):
    df = fs.get_many(conn, "doc_emb", [1, 2, 3, 4])
    assert_frame_matches(conn, df,
                         "SELECT * FROM fs_get_many(NULL::fstore_online.doc_emb, %s::bigint[])",
                         ([1, 2, 3, 4],))
    assert df["embedding"].iloc[0].dtype == np.float32
    np.testing.assert_array_equal(df["embedding"].iloc[0], np.array([1.5, 2.5], dtype=np.float32))
    assert df["embedding"].iloc[1] is None and len(df["embedding"].iloc[2]) == 0
    assert df["seen_at"].iloc[2] == pd.Timestamp("2026-05-31 22:00", tz="UTC")
    assert df["seen_at"].iloc[0].microsecond == 123456
    with pytest.raises(TypeError, match='feature "embedding" is real\\[\\]'):
        fs.get_many_matrix(conn, "doc_emb", [1])


def matrix_from_sql(conn, view, keys, nfeat):
    """What the matrix must hold, from fs_get_many's rows."""
    names, rows = sql_rows(conn, "SELECT * FROM fs_get_many(NULL::fstore_online.%s, %%s::bigint[])"
                           % view, (keys,))
    feats = names[1:1 + nfeat]
    m = np.full((len(rows), nfeat), np.nan, dtype=np.float64)
    for i, r in enumerate(rows):
        for j in range(nfeat):
            v = r[1 + j]
            if v is not None:
                m[i, j] = float(np.float32(v)) if isinstance(v, float) else float(v)
    return m, feats


@pytest.mark.parametrize("keys", [
    list(range(1, 1001)),                                  # every record complete
    list(range(1, 1001)) + [99999],                        # one missing key
    [None, 2000, 5, 2001, 99999, 2002, 2002, 1500, 1, None],  # NULL features, NULL keys
    list(range(1490, 1510)) + list(range(1995, 2005)),    # runs of missing keys
])
def test_matrix_matches_sql(conn, keys):
    m, names = fs.get_many_matrix(conn, "doc_stats", keys, dtype="float64")
    expect, feats = matrix_from_sql(conn, "doc_stats", keys, 10)
    assert names == feats
    assert m.dtype == np.float64
    np.testing.assert_array_equal(m, expect)
    m32, _ = fs.get_many_matrix(conn, "doc_stats", keys)
    assert m32.dtype == np.float32
    np.testing.assert_array_equal(m32, expect.astype(np.float32))


@pytest.mark.parametrize("keys", [list(range(1, 1201)), [5000, 1, 99999, 2]])
def test_matrix_all_real(conn, keys):
    m, names = fs.get_many_matrix(conn, "doc_all_real", np.array(keys))
    expect, feats = matrix_from_sql(conn, "doc_all_real", keys, 3)
    assert names == feats == ["a", "b", "c"]
    np.testing.assert_array_equal(m, expect.astype(np.float32))


def test_matrix_integer_dtype_and_presence(conn):
    with pytest.raises(ValueError, match="cannot be NaN"):
        fs.get_many_matrix(conn, "doc_activity", [10], dtype="int64")
    m, names, present = fs.get_many_matrix(conn, "doc_activity", [10, 25, 11], dtype="int64",
                                           missing=-1, return_present=True)
    assert m.dtype == np.int64 and m[:, 0].tolist() == [30, -1, 33]
    assert present.tolist() == [True, False, True]


def packed_answer(conn, view, keys):
    _, rows = sql_rows(conn, "SELECT fs_get_many_packed(NULL::fstore_online.%s, %%s::bigint[])"
                       % view, (keys,))
    return bytes(rows[0][0])


def test_decode_columns_event_ts(conn):
    keys = [1, 99999, 2002]
    h, present, ts, cols, nulls = fs.decode_columns(packed_answer(conn, "doc_stats", keys))
    assert h.names[0] == "views_7d" and present.tolist() == [True, False, True]
    _, rows = sql_rows(conn, "SELECT event_ts FROM fs_get_many(NULL::fstore_online.doc_stats, "
                       "%s::bigint[])", (keys,))
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert ts[0] == (rows[0][0] - epoch) // dt.timedelta(microseconds=1)
    assert nulls[1].all() and nulls[2].all() and not nulls[0].any()
    assert cols[3].dtype.kind == "f" and cols[4].dtype.kind == "i" and cols[5].dtype.kind == "i"
    assert cols[5][0] == 10000000000 and cols[2][0] == 0    # big, clicked false


def test_malformed_answers(conn):
    for keys in ([1, 2, 3], [1, 99999, 2000, 2002]):
        good = packed_answer(conn, "doc_stats", keys)
        fs.to_matrix(good)
        for n in range(len(good)):
            with pytest.raises(fs.PackedFormatError):
                fs.to_matrix(good[:n])
    with pytest.raises(fs.PackedFormatError):
        fs.to_matrix(b"XXXX" + good[4:])
    # a status byte that is neither 0 nor 1 in a complete-looking body
    bad = bytearray(packed_answer(conn, "doc_all_real", [1, 2]))
    h = fs.parse_header(bytes(bad))
    bad[h.size] = 7
    with pytest.raises(fs.PackedFormatError):
        fs.to_matrix(bytes(bad))


def test_big_endian_answer(conn):
    """The decoder honours the byte order mark (a server of the other order)."""
    good = packed_answer(conn, "doc_all_real", [1, 99999, 5000])
    h = fs.parse_header(good)
    assert h.byteorder == "<"
    # rewrite the answer in big-endian order, field by field
    out = bytearray(good[:4])
    out += struct.pack(">IIHHI", 0x01020304, h.nrecords, len(h.codes), 0, h.size)
    out += good[20:24]
    pos = 24
    for _ in h.codes:
        (nl,) = struct.unpack_from("<H", good, pos + 2)
        out += good[pos:pos + 2] + struct.pack(">H", nl) + good[pos + 4:pos + 4 + nl]
        pos += 4 + nl
    out += good[pos:h.size]
    pos = h.size
    for _ in range(h.nrecords):
        out.append(good[pos])
        if not good[pos]:
            pos += 1
            continue
        (ts,) = struct.unpack_from("<q", good, pos + 1)
        nb = good[pos + 9]
        out += struct.pack(">q", ts) + bytes([nb])
        pos += 10
        for f in range(3):
            if not nb & (1 << f):
                (v,) = struct.unpack_from("<f", good, pos)
                out += struct.pack(">f", v)
                pos += 4
    assert fs.parse_header(bytes(out)).byteorder == ">"
    np.testing.assert_array_equal(fs.to_matrix(bytes(out))[0], fs.to_matrix(good)[0])


def test_training_set(conn):
    df = fs.training_set(conn, "train", order_by=["doc_id", "event_ts"])
    assert_frame_matches(conn, df, "SELECT * FROM fstore_training.train ORDER BY doc_id, event_ts")
    assert str(df["clicked"].dtype) == "boolean"
    assert str(df["was_clicked"].dtype) == "boolean"
    assert str(df["event_ts"].dtype) == "datetime64[ns, UTC]"
    assert str(df["views_7d"].dtype) == "Int32"
    assert df["ctr"].dtype == np.float32
    assert df["clicked"].tolist()[:2] == [True, False] and df["clicked"].iloc[2] is pd.NA
    assert df["tags"].iloc[0].dtype == np.int32 and df["tags"].iloc[1] is None
    # point in time: doc 1's label at 10:00:30 sees the value of 10:00:01
    assert df["views_7d"].iloc[0] == 1
    # doc 2's label is before any value
    assert df["views_7d"].iloc[1] is pd.NA
    with pytest.raises(fs.UnknownNameError):
        fs.training_set(conn, "no_such_set")


def test_unknown_name_and_errors(conn):
    with pytest.raises(fs.UnknownNameError):
        fs.get_many(conn, "no_such_view", [1])
    conn2 = psycopg2.connect(dbname=conn.info.dbname)
    try:
        with pytest.raises(psycopg2.Error) as e:
            fs.get_many(conn2, "doc_stats", ["not a number"])
        assert e.value.pgcode == "22P02"
    finally:
        conn2.close()


def test_cache_is_per_connection(conn):
    fs.get_many(conn, "doc_stats", [1])
    info = fs.key_info(conn, "doc_stats")
    assert info.columns == ["doc_id"] and info.key_type == "bigint"
    assert fs.key_info(conn, "ud").key_type == "fstore.user_doc_key"
    fs.clear_cache(conn)
    assert fs.key_info(conn, "ud").types == ["bigint", "text"]


def test_extension_in_its_own_schema(conn):
    """fs_* functions in a schema off the search_path, a search_path set
    after the key types were cached: the client qualifies what it calls."""
    admin = psycopg2.connect(dbname=conn.info.dbname)
    admin.autocommit = True
    db = conn.info.dbname + "_schema"
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)
        cur.execute("CREATE DATABASE %s" % db)
    try:
        c = psycopg2.connect(dbname=db)
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("""
                CREATE SCHEMA fsx;
                CREATE EXTENSION fstore SCHEMA fsx;
                SET search_path = fsx;
                SELECT fs_create_entity('ud', 'user_id bigint, doc_id text');
                SELECT fs_create_feature_view('v', 'ud', 'x real');
                SELECT fs_write('v', ARRAY[ROW(1, 'a', 1.5, now())]::fstore_online.v[]);
                RESET search_path;""")
        m, names = fs.get_many_matrix(c, "v", [(1, "a"), (2, "b")])
        np.testing.assert_array_equal(m, np.array([[1.5], [np.nan]], dtype=np.float32))
        assert fs.key_info(c, "v").key_type == "fstore.ud_key"
        with c.cursor() as cur:
            cur.execute("CREATE SCHEMA other; CREATE TYPE other.ud_key AS (a int);"
                        " SET search_path = other, public")
        df = fs.get_many(c, "v", [(1, "a")])
        assert df["x"].iloc[0] == np.float32(1.5)
        c.close()
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE %s WITH (FORCE)" % db)
        admin.close()
