#!/usr/bin/env python3
"""The training step of aegan against its PyTorch twin, measured in alternating rounds.

`bench/compare.sh` runs every criterion row first and the twin afterwards, minutes apart. On a
shared (virtual) machine whose speed drifts by a quarter within minutes, that order can make
either side look faster than it is. Here each round times aegan's `train_step` row and the
twin's, one right after the other (which goes first alternates), and the ratio is taken per
round: drift that spans rounds cancels, and the spread of the per-round ratios shows what is
left. Standard library only; the twin needs PyTorch (see bench/README.md).

    bench/interleaved.py --model lean64 --rounds 5          # 2 threads on both sides
    bench/interleaved.py --model lean32 --model lean64 --markdown

Prints one line per round and, per model, the median ratio aegan/PyTorch with its range.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 64
# The models of benches/train_step.rs: label -> (twin preset, image size).
MODELS = {
    "lean32": ("lean", 32),
    "lean64": ("lean", 64),
    "lean128": ("lean", 128),
    "author32": ("author", 32),
}


def fail(message):
    print(f"interleaved.py: {message}", file=sys.stderr)
    sys.exit(2)


def aegan_images_per_s(label, args):
    """Runs criterion's `train_step/<label>/64` row and reads its median back."""
    row = f"train_step/{label}/{BATCH}"
    criterion = Path(args.criterion_dir)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), CRITERION_HOME=str(criterion))
    command = ["cargo", "bench", "--quiet", "--bench", "train_step", "--", "--exact", row,
               "--measurement-time", str(args.measurement_time), "--warm-up-time", "2", "--noplot"]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    except OSError as e:
        fail(f"cannot run cargo: {e}")
    if done.returncode != 0:
        fail(f"cargo bench failed for {row}:\n{done.stderr[-2000:]}")
    estimates = criterion / "train_step" / label / str(BATCH) / "new" / "estimates.json"
    try:
        median_ns = json.loads(estimates.read_text())["median"]["point_estimate"]
    except (OSError, KeyError, ValueError) as e:
        fail(f"no criterion result for {row} in {estimates}: {e}")
    return BATCH / (median_ns * 1e-9)


def twin_images_per_s(label, args):
    """Runs the twin's training row for `label` and reads its images/s."""
    preset, size = MODELS[label]
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [args.python, str(ROOT / "bench" / "torch_twin.py"), "--preset", preset,
                   "--size", str(size), "--label", label, "--device", "cpu",
                   "--threads", str(args.threads), "--batch", str(BATCH), "--steps",
                   str(args.twin_steps), "--reps", str(args.twin_reps), "--warmup", "2",
                   "--no-forward", "--json"]
        try:
            done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.PIPE, text=True)
        except OSError as e:
            fail(f"cannot run the twin with {args.python} (see bench/README.md, or pass --python): {e}")
        if done.returncode != 0:
            fail(f"the twin failed for {label}:\n{done.stderr[-2000:]}")
        rows = json.loads(Path(out.name).read_text())["rows"]
    train = [r for r in rows if r["id"].startswith("train_step/")]
    if not train:
        fail(f"the twin reported no training row for {label}")
    return train[0]["images_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", choices=sorted(MODELS),
                        help="model to measure (repeatable; default lean64)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per model [5]")
    parser.add_argument("--threads", type=int, default=2, help="threads on both sides [2]")
    parser.add_argument("--measurement-time", type=int, default=8,
                        help="criterion's measurement time per round, seconds [8]")
    parser.add_argument("--twin-steps", type=int, default=5, help="twin steps per rep [5]")
    parser.add_argument("--twin-reps", type=int, default=3, help="twin reps, median taken [3]")
    parser.add_argument("--python", default=os.environ.get("PYTHON", ".venv-bench/bin/python"),
                        help="interpreter with torch [$PYTHON or .venv-bench/bin/python]")
    parser.add_argument("--criterion-dir", default=str(ROOT / "target" / "interleaved"),
                        help="criterion's results for these rounds [target/interleaved]")
    parser.add_argument("--markdown", action="store_true", help="print the summary as Markdown")
    args = parser.parse_args()
    if args.rounds < 1 or args.threads < 1 or args.measurement_time < 1:
        fail("--rounds, --threads and --measurement-time must be at least 1")
    models = args.model or ["lean64"]

    summary = []
    for label in models:
        ratios, ours, theirs = [], [], []
        for r in range(args.rounds):
            # Alternate which side goes first, so that a steady drift favours neither.
            if r % 2 == 0:
                a = aegan_images_per_s(label, args)
                t = twin_images_per_s(label, args)
            else:
                t = twin_images_per_s(label, args)
                a = aegan_images_per_s(label, args)
            ours.append(a)
            theirs.append(t)
            ratios.append(a / t)
            print(f"{label} round {r + 1}: aegan {a:.1f} images/s, PyTorch {t:.1f}, "
                  f"ratio {a / t:.2f}", flush=True)
        summary.append((label, statistics.median(ours), statistics.median(theirs),
                        statistics.median(ratios), min(ratios), max(ratios)))

    if args.markdown:
        print(f"\n| row | rounds | aegan images/s (median) | PyTorch images/s (median) "
              f"| aegan/PyTorch, median of rounds (range) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for label, a, t, ratio, lo, hi in summary:
            print(f"| `train_step/{label}/{BATCH}` | {args.rounds} | {a:.1f} | {t:.1f} "
                  f"| **{ratio:.2f}** ({lo:.2f}–{hi:.2f}) |")
    else:
        for label, a, t, ratio, lo, hi in summary:
            print(f"train_step/{label}/{BATCH}: aegan/PyTorch {ratio:.2f} (rounds {lo:.2f}–{hi:.2f}) "
                  f"over {args.rounds} rounds; medians aegan {a:.1f}, PyTorch {t:.1f} images/s")
    print(f"{args.threads} threads on both sides; the twin on the CPU, median of "
          f"{args.twin_reps} reps of {args.twin_steps} steps per round.")


if __name__ == "__main__":
    main()
