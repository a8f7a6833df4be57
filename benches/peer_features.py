"""Peer for `cargo bench --bench load`: DuckDB SQL over the same events Parquet file,
computing the event-derived subset of our features as of one date, the way a data
scientist would write it by hand:

- logins per week, sessions, active days and mean session minutes over the 28 days
  before the date;
- days since the last login and since the last event of any kind;
- per event type, counts over this and the previous 28 days, with the percent change.

Only the events table is read (our run also loads subscriptions, customers, tickets,
payments and surveys and computes every feature). The result is fetched into Arrow, so
the query runs to the end; `threads` is set to the machine's 2 cores.

    pip install duckdb pyarrow
    python3 benches/peer_features.py DATA_DIR 2024-04-01 [RUNS]
"""
import statistics
import sys
import time

import duckdb

data, as_of = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3

QUERY = f"""
WITH e AS (
    SELECT customer_id, CAST(timestamp AS TIMESTAMPTZ) AS ts, event_type, value
    FROM read_parquet('{data}/events.parquet')
    WHERE timestamp < TIMESTAMPTZ '{as_of} 00:00:00+00'
),
usage AS (
    SELECT customer_id,
        count(*) FILTER (WHERE event_type = 'login') / 4.0 AS logins_per_week_28d,
        count(*) FILTER (WHERE event_type = 'session') AS sessions_28d,
        count(DISTINCT date_trunc('day', ts)) AS active_days_28d,
        avg(value) FILTER (WHERE event_type = 'session') AS avg_session_minutes_28d
    FROM e
    WHERE ts >= TIMESTAMPTZ '{as_of} 00:00:00+00' - INTERVAL 28 DAY
    GROUP BY customer_id
),
recency AS (
    SELECT customer_id,
        date_diff('day', max(ts) FILTER (WHERE event_type = 'login'), TIMESTAMPTZ '{as_of} 00:00:00+00') AS days_since_last_login,
        date_diff('day', max(ts), TIMESTAMPTZ '{as_of} 00:00:00+00') AS days_since_last_activity
    FROM e
    GROUP BY customer_id
),
per_type AS (
    SELECT customer_id, event_type,
        count(*) FILTER (WHERE ts >= TIMESTAMPTZ '{as_of} 00:00:00+00' - INTERVAL 28 DAY) AS now_28d,
        count(*) FILTER (WHERE ts < TIMESTAMPTZ '{as_of} 00:00:00+00' - INTERVAL 28 DAY) AS before_28d
    FROM e
    WHERE ts >= TIMESTAMPTZ '{as_of} 00:00:00+00' - INTERVAL 56 DAY
    GROUP BY customer_id, event_type
),
wide AS (
    PIVOT (
        SELECT customer_id, event_type, now_28d,
            CASE WHEN before_28d > 0 THEN 100.0 * (now_28d - before_28d) / before_28d END AS pct_change
        FROM per_type
    ) ON event_type USING first(now_28d) AS n28, first(pct_change) AS pct GROUP BY customer_id
)
SELECT * FROM recency
LEFT JOIN usage USING (customer_id)
LEFT JOIN wide USING (customer_id)
"""

con = duckdb.connect()
con.execute("SET threads TO 2")
times = []
for _ in range(runs):
    t = time.perf_counter()
    table = con.sql(QUERY).to_arrow_table()
    times.append(time.perf_counter() - t)
print(
    f"duckdb {duckdb.__version__}: {table.num_rows} customers x {table.num_columns} columns "
    f"as of {as_of}: median {statistics.median(times):.2f}s over {runs} runs "
    f"({', '.join(f'{x:.2f}' for x in times)})"
)
