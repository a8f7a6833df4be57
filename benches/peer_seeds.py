"""One peer comparison repeated over simulator seeds, with the mean of each figure and
the paired difference against churn-train.

A single simulated data set holds 70-150 held-out churners (benches/peer_time.py) or a
few hundred survival events in its test rows (benches/peer_survival.py): a difference of
one or two churners in a top decile moves its lift by 0.1-0.2. This script generates the
same preset with seeds A..B, runs the peer script on each, reads the rows of its table
and prints every seed's figures, their means, and churn-train minus each peer: the mean
difference, its standard error over the seeds, and how many seeds churn-train was at
least as good on (higher for ROC AUC, lift and concordance; lower for the integrated
Brier score and the calibration errors).

    cargo build --release -p churn-train -p churn-score
    python3 benches/peer_seeds.py time --preset consumer-app --customers 2300 --months 12 --seeds 1-15
    python3 benches/peer_seeds.py survival --preset consumer-app --customers 4000 --months 24 --seeds 1-5

Work files (data sets, examples, models) go under WORK (default target/peer-seeds).
"""
import argparse
import pathlib
import re
import statistics
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
release = root / "target" / "release"

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("bench", choices=["time", "survival"])
parser.add_argument("--preset", default="saas")
parser.add_argument("--customers", type=int, default=2000)
parser.add_argument("--months", type=int, default=18)
parser.add_argument("--seeds", default="1-5", help="A-B, inclusive")
parser.add_argument("--work", type=pathlib.Path, default=root / "target" / "peer-seeds")
args = parser.parse_args()
first, _, last = args.seeds.partition("-")
seeds = range(int(first), int(last or first) + 1)

if args.bench == "time":
    script = "peer_time.py"
    # (row label prefix, short name); figures: ROC AUC, top-decile lift.
    models = [("churn-train train", "churn-train"), ("LightGBM", "LightGBM"), ("L2 logistic", "logistic")]
    figures = [("ROC AUC", +1), ("top-decile lift", +1)]
    count = re.compile(r"held out \d+ rows, (\d+) churners")
else:
    script = "peer_survival.py"
    models = [("churn-train", "churn-train"), ("lifelines CoxPHFitter", "Cox"), ("lifelines WeibullAFTFitter", "Weibull")]
    figures = [("Harrell's C", +1), ("integrated Brier", -1), ("S(3) cal.", -1), ("S(6) cal.", -1), ("S(12) cal.", -1)]
    count = re.compile(r"test rows, (\d+) churned within")
number = re.compile(r"\d+\.\d+")

table = {}
events = {}
for seed in seeds:
    name = f"{args.preset}-{args.customers}x{args.months}-seed{seed}"
    data = args.work / name
    if not data.exists():
        subprocess.run([release / "churn-train", "generate", "--out", data, "--preset", args.preset,
                        "--customers", str(args.customers), "--months", str(args.months), "--seed", str(seed)],
                       check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([sys.executable, root / "benches" / script, data, args.work / f"{name}-{args.bench}"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    events[seed] = int(count.search(out).group(1))
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for prefix, short in models:
            if line.startswith("| ") and cells[0].startswith(prefix) and short not in table.get(seed, {}):
                values = [float(v) for cell in cells[1:] for v in number.findall(cell)][: len(figures)]
                table.setdefault(seed, {})[short] = values
    print(f"seed {seed} ({events[seed]} events): "
          + "; ".join(f"{short} {' / '.join(f'{v:.4f}' for v in table[seed].get(short, []))}" for _, short in models),
          flush=True)

shorts = [short for _, short in models if all(short in table[s] for s in seeds)]
print(f"\n{args.bench}, preset {args.preset}, {args.customers} customers x {args.months} months, "
      f"seeds {args.seeds}: {sum(events.values())} events in the test rows")
print("| model | " + " | ".join(f for f, _ in figures) + " |")
print("|---|" + "---|" * len(figures))
for short in shorts:
    means = [statistics.mean(table[s][short][i] for s in seeds) for i in range(len(figures))]
    print(f"| {short} (mean of {len(seeds)}) | " + " | ".join(f"{m:.4f}" for m in means) + " |")
for short in shorts[1:]:
    cells = []
    for i, (_, better) in enumerate(figures):
        d = [table[s]["churn-train"][i] - table[s][short][i] for s in seeds]
        se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
        wins = sum(better * x >= 0 for x in d)
        cells.append(f"{statistics.mean(d):+.4f} ± {se:.4f} ({wins}/{len(d)})")
    print(f"| churn-train minus {short} (± standard error; seeds at least as good) | " + " | ".join(cells) + " |")
