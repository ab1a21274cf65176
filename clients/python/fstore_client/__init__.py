"""fstore_client: read fstore feature views from Python.

    import psycopg2, fstore_client as fs
    conn = psycopg2.connect("dbname=features")
    df = fs.get_many(conn, "doc_stats", [42, 7, 999])            # pandas DataFrame
    m, names = fs.get_many_matrix(conn, "ranker_v1", np.arange(1000))  # float32 matrix
    train = fs.training_set(conn, "ranker_train")               # DataFrame, typed

Keys are Python ints, strings, tuples (composite keys), lists of those,
numpy arrays (one column per key column for composite keys) or pandas
Series/DataFrames; the client builds the key array of the entity's key type
(read from fstore.entities), so no cast is needed.  See docs/python.md.
"""

import weakref

import numpy as np
from psycopg2 import sql

from .packed import PackedFormatError, decode_columns, parse_header, to_matrix
from .frames import frame_from_cursor

__all__ = [
    "get_many", "get_many_matrix", "training_set", "key_info", "clear_cache",
    "decode_columns", "parse_header", "to_matrix", "PackedFormatError",
    "UnknownNameError",
]
__version__ = "0.2"


class UnknownNameError(LookupError):
    """No feature view, feature service or training set of that name."""


class KeyInfo:
    """The key of a view or service: its entity's key columns and types."""

    __slots__ = ("entity", "columns", "types", "key_type", "schema")

    def __init__(self, entity, columns, types, key_type, schema):
        self.entity = entity
        self.columns = columns
        self.types = types
        self.key_type = key_type      # regtype text, quoted as needed
        self.schema = schema          # where the fs_* functions are

    @property
    def composite(self):
        return len(self.columns) > 1


# per connection: name -> KeyInfo (entities cannot change their key while a
# view uses them, so the answer stays valid as long as the name does)
_cache = weakref.WeakKeyDictionary()

_KEY_QUERY = """
SELECT e.name, e.key_columns::text[], e.key_types,
       -- the key type, schema-qualified unless built in, so that a later
       -- search_path cannot change what the cached name means
       (SELECT CASE WHEN t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace
                    THEN pg_catalog.format_type(t.oid, NULL)
                    ELSE pg_catalog.quote_ident(tn.nspname::text) OPERATOR(pg_catalog.||) '.'
                         OPERATOR(pg_catalog.||) pg_catalog.quote_ident(t.typname::text) END
          FROM pg_catalog.pg_type t
          JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.typnamespace
         WHERE t.oid OPERATOR(pg_catalog.=) e.key_type),
       (SELECT n.nspname::text FROM pg_catalog.pg_extension x
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) x.extnamespace
         WHERE x.extname OPERATOR(pg_catalog.=) 'fstore')
  FROM fstore.entities e
 WHERE e.name OPERATOR(pg_catalog.=)
       (SELECT v.entity FROM fstore.feature_views v WHERE v.name OPERATOR(pg_catalog.=) %(n)s
        UNION ALL
        SELECT s.entity FROM fstore.feature_services s WHERE s.name OPERATOR(pg_catalog.=) %(n)s
        LIMIT 1)
"""


def clear_cache(conn=None):
    """Forgets the key types read from the catalog (for conn, or all)."""
    if conn is None:
        _cache.clear()
    else:
        _cache.pop(conn, None)


def key_info(conn, name):
    """The KeyInfo of a feature view or service (cached per connection)."""
    per_conn = _cache.get(conn)
    if per_conn is None:
        per_conn = {}
        _cache[conn] = per_conn
    info = per_conn.get(name)
    if info is None:
        with conn.cursor() as cur:
            cur.execute(_KEY_QUERY, {"n": name})
            row = cur.fetchone()
        if row is None:
            raise UnknownNameError('feature view or service "%s" does not exist' % name)
        info = KeyInfo(row[0], list(row[1]), list(row[2]), row[3], row[4])
        per_conn[name] = info
    return info


def _plain(v):
    """A key value psycopg2 can adapt (numpy scalars become Python ones)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def _key_list(keys, info):
    """The keys as a list psycopg2 adapts to an array of the key type."""
    try:
        import pandas as pd
    except ImportError:             # pandas is optional
        pd = None
    if pd is not None:
        if isinstance(keys, pd.DataFrame):
            keys = keys.to_numpy(dtype=object) if info.composite else keys.iloc[:, 0].to_numpy()
        elif isinstance(keys, (pd.Series, pd.Index)):
            keys = keys.to_numpy()
    if isinstance(keys, np.ndarray):
        if info.composite and (keys.dtype.names or keys.ndim == 2):
            # a structured array or one column per key column: rows
            keys = [tuple(r) for r in keys.tolist()]
        elif info.composite:
            keys = keys.tolist()
        else:
            if keys.ndim != 1:
                raise ValueError("keys of entity \"%s\" must be a one-dimensional array"
                                 % info.entity)
            # tolist() turns numpy scalars into Python ones in one call
            keys = keys.tolist()
    elif isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of keys, not a single %s"
                        % type(keys).__name__)
    else:
        keys = list(keys)

    ncols = len(info.columns)
    out = []
    if info.composite:
        for k in keys:
            if k is None:
                out.append(None)
                continue
            if isinstance(k, dict):
                k = tuple(k[c] for c in info.columns)
            if not isinstance(k, (tuple, list)) or len(k) != ncols:
                raise ValueError("a key of entity \"%s\" is a tuple of %d values (%s), not %r"
                                 % (info.entity, ncols, ", ".join(info.columns), k))
            out.append(tuple(_plain(x) for x in k))
        return out
    for k in keys:
        if isinstance(k, (tuple, list)):
            if len(k) != 1:
                raise ValueError("entity \"%s\" has one key column (%s), not %r"
                                 % (info.entity, info.columns[0], k))
            k = k[0]
        if isinstance(k, np.generic):
            k = k.item()
        elif isinstance(k, float) and k != k:
            k = None                # NaN from a pandas column: a NULL key
        out.append(k)
    return out


def _keys_param(keys, info):
    """SQL for the typed key array and its parameter.

    psycopg2 sends a list as ARRAY[...] (a tuple inside as a row
    constructor, None as NULL, an empty list as '{}'); the cast gives it
    the entity's key type, composite or not.
    """
    return sql.SQL("%s::{}[]").format(sql.SQL(info.key_type)), _key_list(keys, info)


def _online(name):
    return sql.SQL("NULL::fstore_online.{}").format(sql.Identifier(name))


def get_many(conn, name, keys):
    """Features of keys from a feature view or service, as a DataFrame.

    One row per key in input order (duplicates repeated): the key columns,
    then the features (for a view, also event_ts).  A missing key, or one
    expired by the view's ttl, has its key columns and missing features:
    NaN in float columns, <NA> in nullable integer/boolean columns, NaT in
    timestamps, None in object columns.  Needs pandas.
    """
    info = key_info(conn, name)
    karr, param = _keys_param(keys, info)
    q = sql.SQL("SELECT * FROM {}({}, {})").format(
        sql.Identifier(info.schema, "fs_get_many"), _online(name), karr)
    with conn.cursor() as cur:
        cur.execute(q, (param,))
        return frame_from_cursor(cur)


def get_many_matrix(conn, name, keys, dtype="float32", missing=np.nan,
                    return_present=False):
    """Features of keys as a (keys x features) numpy matrix.

    Reads fs_get_many_packed and decodes it with numpy (no Python work per
    value).  Returns (matrix, feature_names); with return_present=True,
    (matrix, feature_names, present) where present says which keys had a
    value.  Missing keys and NULL features are `missing` (NaN by default;
    give a number for an integer dtype).  Every feature of the view or
    service must be numeric or boolean.
    """
    info = key_info(conn, name)
    karr, param = _keys_param(keys, info)
    q = sql.SQL("SELECT {}({}, {})").format(
        sql.Identifier(info.schema, "fs_get_many_packed"), _online(name), karr)
    with conn.cursor() as cur:
        cur.execute(q, (param,))
        buf = cur.fetchone()[0]
    if buf is None:
        raise ValueError("fs_get_many_packed returned NULL (a NULL key array)")
    return to_matrix(buf, dtype=dtype, missing=missing, return_present=return_present)


def training_set(conn, name, order_by=None):
    """The training set fstore_training.<name> as a typed DataFrame.

    Booleans load as pandas' nullable "boolean", integers as nullable
    Int16/Int32/Int64, real/double as float32/float64 (NaN for NULL),
    timestamptz as datetime64[ns, UTC], arrays as numpy arrays in an
    object column.  order_by: a list of column names to sort by.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = 'fstore_training'"
                    " AND tablename = %s", (name,))
        if cur.fetchone() is None:
            raise UnknownNameError('training set "%s" does not exist' % name)
        q = sql.SQL("SELECT * FROM fstore_training.{}").format(sql.Identifier(name))
        if order_by:
            q += sql.SQL(" ORDER BY {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in order_by))
        cur.execute(q)
        return frame_from_cursor(cur)
