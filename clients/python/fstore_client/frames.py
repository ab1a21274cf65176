"""Typed pandas DataFrames from psycopg2 results.

Each column gets the dtype its PostgreSQL type calls for, whatever the
values of this particular answer are, so that a column keeps its dtype
whether or not it holds NULLs:

    boolean                     pandas "boolean" (nullable, <NA>)
    smallint/integer/bigint     pandas "Int16"/"Int32"/"Int64" (nullable)
    real / double precision     float32 / float64, NaN for NULL
    timestamptz                 datetime64[ns, UTC], NaT for NULL
    timestamp                   datetime64[ns], NaT for NULL
    date                        datetime64[ns] (midnight), NaT for NULL
    real[] / double[] / int[]   object column of numpy arrays (None for NULL)
    anything else               object column of what psycopg2 returns
"""

import numpy as np

# type OIDs (pg_type.dat)
BOOL, INT8, INT2, INT4, FLOAT4, FLOAT8 = 16, 20, 21, 23, 700, 701
DATE, TIMESTAMP, TIMESTAMPTZ = 1082, 1114, 1184
_SCALAR = {
    BOOL: "boolean",
    INT2: "Int16",
    INT4: "Int32",
    INT8: "Int64",
    FLOAT4: "float32",
    FLOAT8: "float64",
}
_ARRAYS = {
    1000: np.bool_,     # boolean[]
    1005: np.int16,     # smallint[]
    1007: np.int32,     # integer[]
    1016: np.int64,     # bigint[]
    1021: np.float32,   # real[]
    1022: np.float64,   # double precision[]
}


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError("fstore_client needs pandas for DataFrames "
                          "(Debian: apt-get install python3-pandas); "
                          "get_many_matrix() works without it") from e
    return pd


def _array_column(values, elem):
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None:
            out[i] = None
        else:
            a = np.array(v, dtype=object)
            # NULL elements: NaN for floats, else keep an object array
            if any(x is None for x in a.flat):
                if np.issubdtype(elem, np.floating):
                    out[i] = np.array([np.nan if x is None else x for x in a.flat],
                                      dtype=elem).reshape(a.shape)
                else:
                    out[i] = a
            else:
                out[i] = a.astype(elem)
    return out


def column(values, type_oid):
    """A pandas Series-ready array for a list of psycopg2 values."""
    pd = _pandas()
    if type_oid in _SCALAR:
        dt = _SCALAR[type_oid]
        if dt.startswith("float"):
            return np.array([np.nan if v is None else v for v in values], dtype=dt)
        return pd.array(values, dtype=dt)
    if type_oid == TIMESTAMPTZ:
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True)
    if type_oid in (TIMESTAMP, DATE):
        return pd.to_datetime(pd.Series(values, dtype=object))
    if type_oid in _ARRAYS:
        return _array_column(values, _ARRAYS[type_oid])
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def frame_from_cursor(cur):
    """All rows of an executed psycopg2 cursor as a typed DataFrame."""
    pd = _pandas()
    rows = cur.fetchall()
    desc = cur.description
    cols = list(zip(*rows)) if rows else [()] * len(desc)
    data = {}
    names = []
    for d, values in zip(desc, cols):
        s = column(list(values), d.type_code)
        if isinstance(s, pd.Series):
            s = s.reset_index(drop=True)
        data[d.name] = s
        names.append(d.name)
    return pd.DataFrame(data, columns=names)
