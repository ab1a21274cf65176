"""Python client benchmark: 1,000 keys into a float32 matrix.

Modes, measured in the same run on the same connection and key sets:
  matrix      fstore_client.get_many_matrix (fs_get_many_packed, numpy decode)
  rows        psycopg2 fetching fs_get_many's typed rows, then np.array(float32)
  sql_rows    psycopg2 fetching the online table's rows (WHERE id = ANY),
              reordered to the request order, then np.array(float32)
Each request asks for KEYS random keys of which MISSING are absent.
Prints p50/p95/p99 in ms per request and the ratios to `matrix`; with
--csv FILE appends one line per mode.
usage: python_client.py DSN VIEW NKEYS_IN_VIEW [--keys 1000] [--missing 0.05]
                        [--seconds 5] [--csv FILE] [--label L]
"""

import argparse
import sys
import time

import numpy as np
import psycopg2

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/clients/python")
import fstore_client as fs  # noqa: E402


def request_keys(rng, n_view, nkeys, missing):
    keys = rng.integers(1, n_view + 1, nkeys)
    nmiss = int(round(nkeys * missing))
    if nmiss:
        keys[rng.choice(nkeys, nmiss, replace=False)] = n_view + 1 + rng.integers(0, 10**6, nmiss)
    return keys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dsn")
    ap.add_argument("view")
    ap.add_argument("n_view", type=int)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--missing", type=float, default=0.05)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--csv")
    ap.add_argument("--label", default="")
    a = ap.parse_args()

    conn = psycopg2.connect(a.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    info = fs.key_info(conn, a.view)
    cur.execute("SELECT name FROM fstore.features WHERE view_name = %s ORDER BY position", (a.view,))
    feats = [r[0] for r in cur.fetchall()]
    nf = len(feats)
    typed_q = "SELECT * FROM fs_get_many(NULL::fstore_online.%s, %%s::%s[])" % (a.view, info.key_type)
    cols = ", ".join(feats)
    key = info.columns[0]
    sql_q = "SELECT %s, %s FROM fstore_online.%s WHERE %s = ANY(%%s::%s[])" % (
        key, cols, a.view, key, info.key_type)

    def matrix(keys):
        return fs.get_many_matrix(conn, a.view, keys)[0]

    def rows(keys):
        cur.execute(typed_q, (keys.tolist(),))
        r = cur.fetchall()
        return np.array([x[1:1 + nf] for x in r], dtype=np.float32).reshape(len(r), nf)

    def sql_rows(keys):
        cur.execute(sql_q, (keys.tolist(),))
        found = {x[0]: x[1:] for x in cur.fetchall()}
        empty = (None,) * nf
        return np.array([found.get(k, empty) for k in keys.tolist()],
                        dtype=np.float32).reshape(len(keys), nf)

    modes = {"matrix": matrix, "rows": rows, "sql_rows": sql_rows}

    # every mode gives the same matrix (NaN where missing)
    rng = np.random.default_rng(7)
    for _ in range(20):
        keys = request_keys(rng, a.n_view, a.keys, a.missing)
        ref = matrix(keys)
        for name, f in modes.items():
            got = f(keys)
            if not np.array_equal(ref, got, equal_nan=True):
                sys.exit("mode %s disagrees with matrix" % name)
    print("agreement: every mode gave the same %dx%d float32 matrices on 20 requests"
          % (a.keys, nf))

    # interleave the modes request by request, so they share the same load
    rng = np.random.default_rng(11)
    times = {m: [] for m in modes}
    deadline = time.monotonic() + a.seconds * len(modes)
    while time.monotonic() < deadline:
        keys = request_keys(rng, a.n_view, a.keys, a.missing)
        for name, f in modes.items():
            t0 = time.perf_counter()
            f(keys)
            times[name].append((time.perf_counter() - t0) * 1000.0)

    label = a.label or "%d keys, %.0f%% missing" % (a.keys, a.missing * 100)
    print("Python client, %s x %d float4 features (%d requests per mode), ms per request"
          % (label, nf, len(times["matrix"])))
    print("%-10s %8s %8s %8s %8s %10s" % ("mode", "p50", "p95", "p99", "mean", "p50 ratio"))
    base = np.percentile(times["matrix"], 50)
    for name, t in times.items():
        p50, p95, p99 = np.percentile(t, [50, 95, 99])
        print("%-10s %8.3f %8.3f %8.3f %8.3f %9.2fx" % (name, p50, p95, p99, np.mean(t), p50 / base))
        if a.csv:
            with open(a.csv, "a") as fh:
                fh.write("python,%s,%d,%.3f,%.4f,%.4f,%.4f\n"
                         % (name, a.keys, a.missing, p50, p95, p99))


if __name__ == "__main__":
    main()
