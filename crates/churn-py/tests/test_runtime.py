"""Heavy calls release the GIL; scoring reads its input where it lies."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from conftest import AS_OF, SAMPLE


def ticks_per_second(during) -> float:
    """How fast a Python thread counts while `during()` runs on this thread."""
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    time.sleep(0.05)
    start, before = time.perf_counter(), ticks
    during()
    elapsed, counted = time.perf_counter() - start, ticks - before
    stop.set()
    counter.join()
    return counted / elapsed, elapsed


def test_a_long_call_lets_other_threads_run(sample):
    idle, _ = ticks_per_second(lambda: time.sleep(0.5))
    # Five calls, each long enough for a Python thread to switch in several times.
    busy, elapsed = ticks_per_second(lambda: [sample.examples() for _ in range(5)])
    assert elapsed > 0.5, "the calls are too short to tell"
    # Holding the GIL, the counter would get at most one 5 ms switch interval in the
    # whole call: well under a tenth of its idle pace.
    assert busy > 0.2 * idle, f"counted {busy:.0f}/s during the call, {idle:.0f}/s idle"


SCORE_1M = """
import resource, sys
import pyarrow as pa
import churn

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

features = churn.Dataset.open(sys.argv[1]).features(as_of=sys.argv[2])
rows = 1_000_000
table = pa.concat_tables([features] * (rows // features.num_rows + 1)).slice(0, rows).combine_chunks()
model = churn.Model.load(sys.argv[3])
before = peak()
scores = model.score(table, reasons=0)
print(table.nbytes, peak() - before, scores.num_rows, scores.nbytes)
"""


def test_scoring_a_million_rows_does_not_copy_them(cli_model):
    done = subprocess.run(
        [sys.executable, "-c", SCORE_1M, str(SAMPLE), AS_OF, str(cli_model)],
        capture_output=True,
        text=True,
        check=True,
    )
    table_bytes, grown, rows, out_bytes = map(int, done.stdout.split())
    print(f"input {table_bytes / 1e6:.0f} MB, peak memory grew {grown / 1e6:.0f} MB, output {out_bytes / 1e6:.0f} MB")
    assert rows == 1_000_000
    # A copy of the input alone would grow the peak by its size; the growth is the
    # output and the batches in flight.
    assert grown < table_bytes / 2, (table_bytes, grown, out_bytes)
