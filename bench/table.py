#!/usr/bin/env python3
"""Prints the side-by-side table of a scripts/bench run.

    python3 bench/table.py DIR

DIR holds one zilla-loadgen JSON file per run and target, named <run>.<target>.json
(target: ours, centrifugo, baseline). Prints a Markdown table: per run the figures that matter
for its scenario, each target's value, and the ratios ours/centrifugo and ours/baseline.
"""

import json
import pathlib
import re
import sys

TARGETS = ("ours", "centrifugo", "baseline")

# Figures per scenario of the loadgen (its "scenario" field), with the better direction.
FIGURES = {
    "idle": [
        ("connected", None),
        ("rss_per_conn_bytes", "lower"),
        ("connect_s", "lower"),
        ("cpu_percent", "lower"),
        ("fetch_requests", "lower"),
    ],
    "fanout": [
        ("delivered_per_s", "higher"),
        ("expected", None),
        ("delivered", None),
        ("duplicated", "lower"),
        ("errors", "lower"),
        ("p50_us", "lower"),
        ("p99_us", "lower"),
        ("p999_us", "lower"),
        ("lost", "lower"),
        ("cpu_percent", "lower"),
        ("cpu_us_per_delivery", "lower"),
        ("peak_rss_bytes", "lower"),
        ("fetch_requests", "lower"),
    ],
    "reconnect": [
        ("resume_ms", "lower"),
        ("resumed", None),
        ("lost", "lower"),
        ("duplicated", "lower"),
        ("p99_us", "lower"),
        ("cpu_percent", "lower"),
    ],
    "replay": [
        ("replayed", None),
        ("replay_records_per_s", "higher"),
        ("peak_rss_bytes", "lower"),
    ],
}
FIGURES["filtered"] = FIGURES["fanout"]


def run_order(name):
    """Orders runs as scripts/bench runs them, then by their subscriber count."""
    order = ["idle", "idle-h2", "fanout", "latency", "filtered", "filtered-h2", "reconnect",
             "replay", "tls-idle", "tls-fanout", "fetch"]
    match = re.fullmatch(r"(.*?)(?:-(\d+))?", name)
    base, count = match.group(1), int(match.group(2) or 0)
    return (order.index(base) if base in order else len(order), base, count)


def shown(value):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(ours, other):
    if not isinstance(ours, (int, float)) or not isinstance(other, (int, float)) or other == 0:
        return "–"
    return f"{ours / other:.2f}"


def load(directory):
    runs = {}
    for path in sorted(directory.glob("*.json")):
        match = re.fullmatch(r"(.+)\.(ours|centrifugo|baseline)\.json", path.name)
        if not match:
            continue
        try:
            runs.setdefault(match.group(1), {})[match.group(2)] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"table: skipping {path}: {err}", file=sys.stderr)
    return runs


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    runs = load(pathlib.Path(sys.argv[1]))
    if not runs:
        print("table: no results", file=sys.stderr)
        return 1
    print("| run | figure | ours | centrifugo | baseline | ours/centrifugo | ours/baseline |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in sorted(runs, key=run_order):
        by_target = runs[name]
        first = next(iter(by_target.values()))
        scenario = first.get("scenario", "fanout")
        label = f"{name} (n={first.get('n')}"
        if (first.get("keys") or 1) > 1:
            label += f", {first.get('keys'):,} keys"
        if (first.get("http") or "1.1") != "1.1":
            label += f", h2 {first['http'].removeprefix('2 (').removesuffix(')')}"
        if first.get("rate"):
            label += f", {first.get('rate')} msg/s × {first.get('size')} B"
        label += ")"
        for figure, better in FIGURES.get(scenario, FIGURES["fanout"]):
            values = [by_target.get(t, {}).get(figure) for t in TARGETS]
            if all(v is None for v in values):
                continue
            arrow = {"higher": " ↑", "lower": " ↓"}.get(better, "")
            ours, cf, base = values
            print(f"| {label} | {figure}{arrow} | {shown(ours)} | {shown(cf)} | {shown(base)} | "
                  f"{ratio(ours, cf) if better else '–'} | {ratio(ours, base) if better else '–'} |")
            label = ""
    return 0


if __name__ == "__main__":
    sys.exit(main())
