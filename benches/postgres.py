"""PostgreSQL as a source and a sink, measured against Parquet and the Python peers.

Reading: the simulated base (`churn-train generate --format parquet`) is loaded into a
schema with `churn-train import`; then, alternating, `churn-train features` from the
database and from the Parquet directory (reading every table, events included, and
building every feature), against the server's own binary COPY of every table with
nothing done to the bytes (the floor of any client), psycopg 3 COPY (CSV) into pandas
(pyarrow's CSV reader) and `pandas.read_sql` (SQLAlchemy + psycopg).

Writing: a scored worklist (`churn-score` on the 10 M feature rows of `cargo bench
--bench score`) written into a table by `churn-score --output postgres://...` against
the same run writing Parquet, and against pandas + psycopg COPY FROM of the same rows.

Usage (a running server; the password in PGPASSWORD):
    python benches/postgres.py --url postgres://churn@127.0.0.1:55432/postgres \
        [--customers 1000000 --months 2] [--runs 3] [--skip-write]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_common import median_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["subscriptions", "customers", "events", "tickets", "payments", "surveys", "catalog"]


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--read-sql-limit", type=int, default=5_000_000,
                   help="rows of events pandas.read_sql reads (it holds Python objects)")
    p.add_argument("--skip-write", action="store_true")
    p.add_argument("--skip-read", action="store_true")
    a = p.parse_args()

    import pandas as pd
    import psycopg
    import pyarrow.csv as pacsv
    import sqlalchemy

    train = str(ROOT / "target/release/churn-train")
    score = str(ROOT / "target/release/churn-score")
    work = ROOT / "target/bench-postgres"
    base = work / f"base-{a.customers}-{a.months}"
    schema = f"bench_{a.customers}_{a.months}"
    url = f"{a.url}?schema={schema}"
    conninfo = a.url
    engine = sqlalchemy.create_engine(a.url.replace("postgres://", "postgresql+psycopg://"))
    as_of = f"2024-{1 + a.months:02d}-01"
    out = Path(tempfile.mkdtemp())
    print(f"# {time.strftime('%Y-%m-%d')}, base {a.customers} customers x {a.months} months")

    if not a.skip_read:
        if not base.exists():
            run([train, "generate", "--out", str(base), "--customers", str(a.customers),
                 "--months", str(a.months), "--format", "parquet", "--seed", "1"])
        with psycopg.connect(conninfo) as c:
            loaded = c.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()[0]
        if not loaded:
            t = time.perf_counter()
            run([train, "import", "--data", str(base), "--to", url])
            print(f"import: {time.perf_counter() - t:.1f} s")
        with psycopg.connect(conninfo) as c:
            for t_name in TABLES:
                n = c.execute(f'SELECT count(*) FROM "{schema}"."{t_name}"').fetchone()[0]
                print(f"  {t_name}: {n} rows")

        def features_from(source: str):
            return lambda: run([train, "features", "--data", source, "--as-of", as_of,
                                "--out", str(out / "f.parquet")])

        def server_copy():
            # What the server sends: binary COPY of every table, bytes dropped.
            with psycopg.connect(conninfo) as c, c.cursor() as cur:
                for t_name in TABLES:
                    with cur.copy(f'COPY "{schema}"."{t_name}" TO STDOUT (FORMAT binary)') as cp:
                        for _ in cp:
                            pass

        def psycopg_copy_pandas():
            frames = {}
            with psycopg.connect(conninfo) as c, c.cursor() as cur:
                for t_name in TABLES:
                    buf = io.BytesIO()
                    with cur.copy(f'COPY "{schema}"."{t_name}" TO STDOUT (FORMAT csv, HEADER)') as cp:
                        for chunk in cp:
                            buf.write(chunk)
                    buf.seek(0)
                    frames[t_name] = pacsv.read_csv(buf).to_pandas(types_mapper=pd.ArrowDtype)
                    del buf
            return frames

        pg, dirs = [], []
        for _ in range(a.runs):
            pg.append(median_of(1, features_from(url))[0])
            dirs.append(median_of(1, features_from(str(base)))[0])
        med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
        print(f"churn-train features --data postgres: {med(pg):.2f} s {[round(x, 2) for x in pg]}")
        print(f"churn-train features --data parquet dir: {med(dirs):.2f} s {[round(x, 2) for x in dirs]}")
        m, times = median_of(a.runs, server_copy)
        print(f"server binary COPY of every table, bytes dropped (psycopg): {m:.2f} s {[round(x, 2) for x in times]}")
        m, times = median_of(1, psycopg_copy_pandas)
        print(f"psycopg COPY csv -> pyarrow csv -> pandas, every table: {m:.2f} s")

        def read_sql():
            frames = {}
            for t_name in TABLES:
                limit = f" LIMIT {a.read_sql_limit}" if t_name == "events" else ""
                frames[t_name] = pd.read_sql(f'SELECT * FROM "{schema}"."{t_name}"{limit}', engine)
            return frames

        m, _ = median_of(1, read_sql)
        print(f"pandas.read_sql, every table (events: first {a.read_sql_limit} rows): {m:.2f} s")

    if not a.skip_write:
        features = ROOT / "target/bench-score/features.parquet"
        model = ROOT / "target/bench-score/models/churn"
        if not features.exists():
            sys.exit("run `cargo bench --bench score` first (it writes target/bench-score)")
        table_url = f"{a.url}?schema=bench_out&table=scores"
        worklist = out / "worklist.parquet"

        def score_to(dest: str):
            return lambda: run([score, "--model", str(model), "--input", str(features),
                                "--output", dest, "--quiet"])

        to_pg, to_file = [], []
        for _ in range(a.runs):
            to_pg.append(median_of(1, score_to(table_url))[0])
            to_file.append(median_of(1, score_to(str(worklist)))[0])
        med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
        print(f"churn-score 10 M rows -> postgres table: {med(to_pg):.2f} s {[round(x, 2) for x in to_pg]}")
        print(f"churn-score 10 M rows -> parquet file: {med(to_file):.2f} s {[round(x, 2) for x in to_file]}")

        frame = pd.read_parquet(worklist)

        def pandas_copy_in():
            with psycopg.connect(conninfo) as c, c.cursor() as cur:
                cur.execute("CREATE SCHEMA IF NOT EXISTS bench_out")
                cur.execute("DROP TABLE IF EXISTS bench_out.peer")
                cols = ", ".join(
                    f'"{n}" {"double precision" if frame[n].dtype.kind == "f" else "text"}'
                    for n in frame.columns)
                cur.execute(f"CREATE TABLE bench_out.peer ({cols})")
                with cur.copy("COPY bench_out.peer FROM STDIN (FORMAT csv)") as cp:
                    step = 500_000
                    for i in range(0, len(frame), step):
                        cp.write(frame.iloc[i:i + step].to_csv(index=False, header=False))

        m, _ = median_of(1, pandas_copy_in)
        print(f"pandas to_csv + psycopg COPY FROM of the same {len(frame)} rows (in memory already): {m:.2f} s")


if __name__ == "__main__":
    main()
