#!/usr/bin/env python3
"""Summarize gemm_backends results from one or more criterion output folders as Markdown.

Each folder is a copy of target/criterion after one complete run of the benchmark (both
MATMUL_NUM_THREADS invocations). A figure is the median over folders of criterion's median time
per iteration; with more than one folder, the range over folders follows in brackets. Ratios are
taken within each folder first, then their median over folders is shown.

Usage: python3 benches/gemm_report.py RUN_DIR [RUN_DIR ...]
"""

import json
import statistics
import sys
from pathlib import Path

# Column order of the products table: (function id, heading).
PRODUCT_COLUMNS = [
    ("matrixmultiply_1t", "matrixmultiply 1t"),
    ("matrixmultiply_2t", "matrixmultiply 2t"),
    ("linalg_1t", "gemm 1t"),
    ("gemm_2t", "gemm 2t"),
    ("faer_1t", "faer 1t"),
    ("faer_2t", "faer 2t"),
]

NETWORKS = {
    "784-256-128-10_m128": ([784, 256, 128, 10], 128),
    "784-1024-1024-10_m512": ([784, 1024, 1024, 10], 512),
}

# Per-product (1 thread, 2 threads) function ids of each backend.
BACKEND_THREADS = {
    "matrixmultiply": ("matrixmultiply_1t", "matrixmultiply_2t"),
    "gemm": ("linalg_1t", "gemm_2t"),
    "faer": ("faer_1t", "faer_2t"),
}


def load_run(folder):
    """Return {(group, function, parameter): (median seconds, FLOP, fastest-sample seconds)}.

    Times are per iteration; FLOP is per iteration too.
    """
    results = {}
    for benchmark_file in Path(folder).glob("*/*/*/new/benchmark.json"):
        benchmark = json.loads(benchmark_file.read_text())
        estimates = json.loads((benchmark_file.parent / "estimates.json").read_text())
        sample = json.loads((benchmark_file.parent / "sample.json").read_text())
        fastest = min(t / n for t, n in zip(sample["times"], sample["iters"])) * 1e-9
        key = (benchmark["group_id"], benchmark["function_id"], benchmark["value_str"])
        flop = (benchmark.get("throughput") or {}).get("Elements")
        results[key] = (estimates["median"]["point_estimate"] * 1e-9, flop, fastest)
    return results


def load_summary(folder):
    """Describe the 1-minute load average logged during a run, if the run logged it."""
    log = Path(folder) / "load.log"
    if not log.exists():
        return "no load log"
    loads = [float(line.split()[1]) for line in log.read_text().splitlines() if line.strip()]
    if not loads:
        return "empty load log"
    start, end = log.read_text().split()[0], log.read_text().splitlines()[-1].split()[0]
    return (
        f"{start}–{end} UTC, 1-minute load average {min(loads):.1f}–{max(loads):.1f}, "
        f"median {statistics.median(loads):.1f}"
    )


def spread(values, digits=0):
    """Format the median of values, with their range when there is more than one."""
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def gflops(runs, key, fastest=False):
    """Return GFLOP/s of key in every run that has it, from the median or the fastest sample."""
    index = 2 if fastest else 0
    return [run[key][1] / run[key][index] * 1e-9 for run in runs if key in run]


def seconds(runs, key):
    return [run[key][0] for run in runs if key in run]


def layer_keys(network):
    """Yield (multiply-adds, parameter) of every product of one step of network."""
    widths, batch = NETWORKS[network]
    for inputs, outputs in zip(widths, widths[1:]):
        for product in ("forward", "dW", "dA"):
            yield inputs * outputs * batch, f"{inputs}-{outputs}_m{batch}_{product}"


def products_table(runs):
    parameters = sorted(
        {key[2] for run in runs for key in run if key[0] == "products"},
        key=lambda p: (int(p.split("_m")[1].split("_")[0]), -int(p.split("-")[0]), p),
    )
    lines = [
        "| layer, batch, product | " + " | ".join(h for _, h in PRODUCT_COLUMNS) + " |",
        "|---|" + "---:|" * len(PRODUCT_COLUMNS),
    ]
    for parameter in parameters:
        cells = []
        for function, _ in PRODUCT_COLUMNS:
            values = gflops(runs, ("products", function, parameter))
            cells.append(spread(values) if values else "–")
        lines.append(f"| {parameter} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("GFLOP/s of the fastest sample (the one least slowed by other processes):")
    lines.append("")
    lines.append(lines[0])
    lines.append(lines[1])
    for parameter in parameters:
        cells = []
        for function, _ in PRODUCT_COLUMNS:
            values = gflops(runs, ("products", function, parameter), fastest=True)
            cells.append(spread(values) if values else "–")
        lines.append(f"| {parameter} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Median time per product, µs:")
    lines.append("")
    lines.append(lines[0])
    lines.append(lines[1])
    for parameter in parameters:
        cells = []
        for function, _ in PRODUCT_COLUMNS:
            values = [s * 1e6 for s in seconds(runs, ("products", function, parameter))]
            cells.append(f"{statistics.median(values):.0f}" if values else "–")
        lines.append(f"| {parameter} | " + " | ".join(cells) + " |")
    return lines


def step_table(runs):
    functions = sorted({key[1] for run in runs for key in run if key[0] == "step"})
    lines = []
    for network in NETWORKS:
        reference = ("step", "linalg_2t", network)
        lines.append(
            f"{network}: median GFLOP/s, median time relative to linalg_2t in the same run, "
            "and GFLOP/s of the fastest sample"
        )
        lines.append("")
        lines.append("| backend, policy | GFLOP/s | time / linalg_2t | fastest sample, GFLOP/s |")
        lines.append("|---|---:|---:|---:|")
        for function in functions:
            key = ("step", function, network)
            values = gflops(runs, key)
            if not values:
                continue
            ratios = [run[key][0] / run[reference][0] for run in runs if key in run and reference in run]
            fastest = [run[key][1] / run[key][2] * 1e-9 for run in runs if key in run]
            lines.append(
                f"| {function} | {spread(values)} | {spread(ratios, 2)} | {spread(fastest)} |"
            )
        lines.append("")
    return lines


def policy_table(runs):
    """Sum per-product medians into step times for each backend and thread policy."""
    lines = [
        "| network | backend | all 1t | all 2t | best split: 1t below | split |",
        "|---|---|---:|---:|---|---:|",
    ]
    for network in NETWORKS:
        products = list(layer_keys(network))
        total_flop = 2 * sum(size for size, _ in products)
        sizes = sorted({size for size, _ in products})
        for backend, (one, two) in BACKEND_THREADS.items():

            def step_gflops(threshold):
                """GFLOP/s per run of the step with products below threshold on one thread."""
                values = []
                for run in runs:
                    keys = [
                        ("products", one if size < threshold else two, parameter)
                        for size, parameter in products
                    ]
                    if all(key in run for key in keys):
                        values.append(total_flop / sum(run[key][0] for key in keys) * 1e-9)
                return values

            all_two = step_gflops(0)
            if not all_two:
                continue
            all_one = step_gflops(float("inf"))
            # A threshold just above each product size moves that size and smaller ones to one
            # thread; the largest size would move everything.
            candidates = [(size + 1, step_gflops(size + 1)) for size in sizes[:-1]]
            best_threshold, best = max(candidates, key=lambda c: statistics.median(c[1]))
            lines.append(
                f"| {network} | {backend} | {spread(all_one)} | {spread(all_two)} "
                f"| ≤ {best_threshold - 1} multiply-adds | {spread(best)} |"
            )
    return lines


def threshold_table(runs):
    parameters = sorted(
        {key[2] for run in runs for key in run if key[0] == "threshold"},
        key=lambda p: int(p.split("x")[0]),
    )
    functions = ["gemm_1t", "gemm_2t", "faer_1t", "faer_2t"]
    lines = [
        "| product | multiply-adds | "
        + " | ".join(functions)
        + " | gemm 2t/1t time | faer 2t/1t time | same, fastest samples |",
        "|---|---:|" + "---:|" * (len(functions) + 3),
    ]
    for parameter in parameters:
        side = int(parameter.split("x")[0])
        cells = [spread(gflops(runs, ("threshold", f, parameter))) for f in functions]
        for backend in ("gemm", "faer"):
            one = ("threshold", f"{backend}_1t", parameter)
            two = ("threshold", f"{backend}_2t", parameter)
            ratios = [run[two][0] / run[one][0] for run in runs if one in run and two in run]
            cells.append(spread(ratios, 2))
        fastest = []
        for backend in ("gemm", "faer"):
            one = ("threshold", f"{backend}_1t", parameter)
            two = ("threshold", f"{backend}_2t", parameter)
            ratios = [run[two][2] / run[one][2] for run in runs if one in run and two in run]
            fastest.append(spread(ratios, 2))
        cells.append(" / ".join(fastest))
        lines.append(f"| {parameter} | {side**3} | " + " | ".join(cells) + " |")
    return lines


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    runs = [load_run(folder) for folder in sys.argv[1:]]
    sections = [
        ("Per-product throughput, GFLOP/s", products_table(runs)),
        ("Whole training step, measured", step_table(runs)),
        ("Thread policy, from the per-product medians", policy_table(runs)),
        ("Square products around the parallel threshold, GFLOP/s", threshold_table(runs)),
    ]
    print(f"{len(runs)} run(s):\n")
    for folder in sys.argv[1:]:
        print(f"- {folder}: {load_summary(folder)}")
    print()
    for title, lines in sections:
        print(f"## {title}\n")
        print("\n".join(lines))
        print()


if __name__ == "__main__":
    main()
