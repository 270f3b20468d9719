#!/usr/bin/env python3
"""Side-by-side table of aegan's criterion results and the PyTorch twin's JSON output.

    python3 bench/table.py --criterion target/criterion twin-lean32.json twin-author32.json ...

aegan's numbers are read from criterion's saved results: every `<dir>/**/new/benchmark.json`
(its `full_id`, e.g. `forward/lean32/generator/64`, and its `throughput`, images per iteration)
with the `estimates.json` beside it (nanoseconds per iteration). The twin's rows carry the
same ids. Rows present on only one side are shown with a dash. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import re
import sys
from pathlib import Path

NETWORK_ORDER = ["generator", "encoder", "image_discriminator", "latent_discriminator"]
MODEL_ORDER = ["lean32", "author32", "lean64"]  # the order of the crate's benches


def criterion_rows(root: Path, stat: str) -> tuple[dict, list]:
    """id -> images/s from criterion's `new` results under `root`, and their file times."""
    rows, times = {}, []
    if not root.is_dir():
        return rows, times
    for bench_file in root.rglob("new/benchmark.json"):
        est_file = bench_file.with_name("estimates.json")
        try:
            bench = json.loads(bench_file.read_text())
            est = json.loads(est_file.read_text())
        except (OSError, ValueError):
            continue
        throughput = bench.get("throughput") or {}
        elements = throughput.get("Elements")
        if elements is None:
            continue
        if stat == "typical":
            # What criterion prints as thrpt: the slope when it has one, else the mean.
            chosen = est.get("slope") or est.get("mean")
        else:
            chosen = est.get(stat) or est.get("mean")
        if not chosen:
            continue
        ns = chosen["point_estimate"]
        if ns <= 0:
            continue
        full_id = bench.get("full_id") or "/".join(
            p for p in (bench.get("group_id"), bench.get("function_id"), bench.get("value_str")) if p
        )
        rows[full_id] = elements / (ns * 1e-9)
        times.append(est_file.stat().st_mtime)
    return rows, times


def twin_rows(paths: list) -> tuple[dict, dict, list]:
    rows, params, metas = {}, {}, []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            print(f"warning: cannot read twin results {path}: {e}", file=sys.stderr)
            continue
        metas.append(data.get("meta", {}))
        params.update(data.get("params", {}))
        for r in data.get("rows", []):
            rows[r["id"]] = r["images_per_s"]
    return rows, params, metas


def sort_key(row_id: str):
    parts = row_id.split("/")
    kind = {"train_step": 0, "forward": 1}.get(parts[0], 2)
    model = parts[1] if len(parts) > 1 else ""
    model_n = MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)
    batch = parts[-1]
    batch_n = int(batch) if batch.isdigit() else math.inf
    net = parts[2] if kind == 1 and len(parts) > 3 else ""
    net_n = NETWORK_ORDER.index(net) if net in NETWORK_ORDER else len(NETWORK_ORDER)
    return (kind, model_n, model, batch_n, net_n, row_id)


def fmt(v) -> str:
    if v is None:
        return "-"
    if v >= 1e5:
        return f"{v:,.0f}"
    return f"{v:,.1f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("twin_json", nargs="*", help="JSON files written by torch_twin.py --json")
    p.add_argument("--criterion", type=Path, default=Path("target/criterion"), help="criterion's output folder")
    p.add_argument(
        "--stat",
        choices=["median", "mean", "slope", "typical"],
        default="median",
        help="criterion estimate used for aegan (default median, like the twin; "
        "'typical' is what criterion prints as thrpt)",
    )
    p.add_argument("--filter", default="", help="only rows whose id matches this regular expression (as criterion filters)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = p.parse_args(argv)

    crate, crate_times = criterion_rows(args.criterion, args.stat)
    twin, params, metas = twin_rows(args.twin_json)
    ids = sorted({i for i in set(crate) | set(twin) if re.search(args.filter, i)}, key=sort_key)
    if not ids:
        print("no results on either side (run the benches first; see bench/README.md)")
        return 1

    header = ("row", "aegan images/s", "PyTorch images/s", "aegan/PyTorch")
    body = []
    for i in ids:
        a, t = crate.get(i), twin.get(i)
        ratio = f"{a / t:.2f}" if a is not None and t else "-"
        body.append((i, fmt(a), fmt(t), ratio))

    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("| --- | ---: | ---: | ---: |")
        for r in body:
            print("| `" + r[0] + "` | " + " | ".join(r[1:]) + " |")
    else:
        widths = [max(len(str(r[c])) for r in [header] + body) for c in range(4)]
        line = lambda r: "  ".join(  # noqa: E731
            str(v).ljust(widths[c]) if c == 0 else str(v).rjust(widths[c]) for c, v in enumerate(r)
        )
        print(line(header))
        print("  ".join("-" * w for w in widths))
        for r in body:
            print(line(r))

    print()
    print(f"aegan: criterion {args.stat} estimate, {len(crate)} rows in {args.criterion}", end="")
    if crate_times:
        oldest = datetime.datetime.fromtimestamp(min(crate_times)).strftime("%Y-%m-%d %H:%M")
        newest = datetime.datetime.fromtimestamp(max(crate_times)).strftime("%Y-%m-%d %H:%M")
        print(f" (written {oldest} .. {newest})")
    else:
        print()
    for m in metas:
        print(
            f"PyTorch: {m.get('label')}: torch {m.get('torch')} on {m.get('device')} "
            f"({m.get('device_name')}), {m.get('threads')} threads, median of {m.get('steps')} steps / "
            f"{m.get('reps')} reps after {m.get('warmup')} warm-up"
        )
    for label, counts in params.items():
        print(f"PyTorch parameters {label}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print("ratio > 1: aegan is faster.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
