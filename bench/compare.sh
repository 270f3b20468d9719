#!/usr/bin/env bash
# Side-by-side speed of aegan (its criterion benches) and the PyTorch twin (bench/torch_twin.py):
# one row per benchmark id, aegan images/s, PyTorch images/s, ratio aegan/PyTorch. Model by model
# (lean32, author32, lean64, lean128), aegan's rows run and then the twin's, so that both sides of a
# ratio are measured minutes apart at most, whatever the machine does over the whole run.
#
# Not part of CI: it needs PyTorch (see bench/README.md) and takes long (the author32 rows are
# minutes per step on a laptop CPU). Run it from anywhere:
#
#   bench/compare.sh                          # CPU, 2 threads on both sides, every row
#   bench/compare.sh --filter lean32          # one model
#   bench/compare.sh --device cuda            # cargo bench --features cuda + twin on CUDA
#   bench/compare.sh --skip-cargo             # reuse criterion's last results
#
# Options (defaults in brackets):
#   --device cpu|cuda      twin device; cuda also builds the benches with --features cuda [cpu]
#   --threads N            RAYON_NUM_THREADS for aegan, --threads for the twin [2]
#   --filter TEXT          criterion filter, and the twin models/rows to run [all]
#   --features LIST        cargo features for the benches [none on cpu, "cuda" on cuda]
#   --steps N --reps N --warmup N    twin repetitions [10 10 2]
#   --stat median|mean|slope|typical criterion estimate for aegan [median]
#   --python PATH          interpreter with torch [$PYTHON or .venv-bench/bin/python]
#   --out DIR              where the twin's JSON and the table go [target/bench-compare]
#   --criterion-dir DIR    criterion's results [$CRITERION_HOME or ${CARGO_TARGET_DIR:-target}/criterion]
#   --skip-cargo           don't run cargo bench; read existing criterion results
#   --skip-twin            don't run the twin; reuse the JSON files in --out
#   --markdown             print the table as Markdown
#   --twin-arg ARG         pass ARG through to torch_twin.py (repeatable, e.g. --twin-arg --adam=fused)
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$script")/.."

device=cpu
threads=2
filter=""
features=""
features_set=0
steps=10
reps=10
warmup=2
stat=median
python="${PYTHON:-.venv-bench/bin/python}"
out=target/bench-compare
criterion_dir="${CRITERION_HOME:-${CARGO_TARGET_DIR:-target}/criterion}"
skip_cargo=0
skip_twin=0
markdown=()
twin_extra=()

die() { echo "compare.sh: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --device) need "$@"; device="$2"; shift 2 ;;
    --threads) need "$@"; threads="$2"; shift 2 ;;
    --filter) need "$@"; filter="$2"; shift 2 ;;
    --features) need "$@"; features="$2"; features_set=1; shift 2 ;;
    --steps) need "$@"; steps="$2"; shift 2 ;;
    --reps) need "$@"; reps="$2"; shift 2 ;;
    --warmup) need "$@"; warmup="$2"; shift 2 ;;
    --stat) need "$@"; stat="$2"; shift 2 ;;
    --python) need "$@"; python="$2"; shift 2 ;;
    --out) need "$@"; out="$2"; shift 2 ;;
    --criterion-dir) need "$@"; criterion_dir="$2"; shift 2 ;;
    --skip-cargo) skip_cargo=1; shift ;;
    --skip-twin) skip_twin=1; shift ;;
    --markdown) markdown=(--markdown); shift ;;
    --twin-arg) need "$@"; twin_extra+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$script" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

case "$device" in
  cpu) ;;
  cuda|cuda:*) [ "$features_set" = 1 ] || features=cuda ;;
  *) die "--device must be cpu or cuda" ;;
esac

# The models of benches/train_step.rs and benches/forward.rs: preset:size. The 128×128 model
# has a training row only (its forward rows would add minutes and say little more).
models=(lean:32 author:32 lean:64 lean:128)
train_only=(lean128)

mkdir -p "$out"

# Whether the filter text $1 designates model label $2: lean32, lean32/..., or a prefix like lean.
names_model() {
  case "$1" in
    "$2"|"$2"/*) return 0 ;;
  esac
  case "$2" in
    "$1"*) return 0 ;;
  esac
  return 1
}
names_a_model() {
  local m
  for m in "${models[@]}"; do
    names_model "$1" "${m%%:*}${m##*:}" && return 0
  done
  return 1
}

# ---- aegan: criterion -------------------------------------------------------------------------
feature_args=()
[ -n "$features" ] && feature_args=(--features "$features")
if [ "$skip_cargo" = 0 ]; then
  command -v cargo >/dev/null || die "cargo not found (use --skip-cargo to read existing results)"
  export RAYON_NUM_THREADS="$threads"
  export CRITERION_HOME="$criterion_dir"
  # Build both benches first, so that no model's rows wait on the compiler.
  echo "== cargo bench --no-run --bench train_step --bench forward ${feature_args[*]}" >&2
  cargo bench --no-run --bench train_step --bench forward "${feature_args[@]}" >&2
fi

# The criterion ids of bench $1 for model label $2 (its rows and variants such as
# lean32-generic) that the filter selects, one per line.
criterion_rows() {
  cargo bench --quiet --bench "$1" "${feature_args[@]}" -- --list 2>/dev/null |
    sed -n 's/: benchmark$//p' | grep -E "^$1/$2[/-]" | grep -E -- "${filter:-.}" || true
}

# Runs aegan's criterion rows of model label $1 that the filter selects.
aegan_rows() {
  local bench rows regex
  for bench in train_step forward; do
    rows="$(criterion_rows "$bench" "$1")"
    [ -n "$rows" ] || continue
    # One anchored alternative per id (ids hold no characters a regex treats specially but
    # `.`, escaped anyway).
    regex="^($(printf '%s\n' "$rows" | sed 's/[.]/\\./g' | paste -sd'|'))\$"
    echo "== cargo bench --bench $bench ${feature_args[*]} -- '$regex' (RAYON_NUM_THREADS=$threads)" >&2
    cargo bench --quiet --bench "$bench" "${feature_args[@]}" -- "$regex" >&2
  done
}

# ---- per model: aegan's rows, then the twin's, back to back -------------------------------------
# A model's two sides are measured a minute or two apart rather than the whole of aegan's run
# apart, so that a drift of a shared machine's speed touches both sides of a row alike.
twin_files=()
for model in "${models[@]}"; do
  preset="${model%%:*}"
  size="${model##*:}"
  label="$preset$size"
  [ "$skip_cargo" = 0 ] && aegan_rows "$label"
  parts=()
  if [ -n "$filter" ]; then
    rest="$filter"
    case "$filter" in
      train_step) parts=(--no-forward); rest="" ;;
      forward) parts=(--no-train); rest="" ;;
      train_step/*) parts=(--no-forward); rest="${filter#train_step/}" ;;
      forward/*) parts=(--no-train); rest="${filter#forward/}" ;;
    esac
    # Skip this model when the filter names another one (lean32, author32/encoder) or a
    # prefix of other ones only (author); a filter naming no model (generator) runs them all.
    if [ -n "$rest" ] && names_a_model "$rest" && ! names_model "$rest" "$label"; then
      continue
    fi
  fi
  for m in "${train_only[@]}"; do
    if [ "$m" = "$label" ]; then
      case " ${parts[*]} " in
        *" --no-train "*) continue 2 ;;
        *" --no-forward "*) ;;
        *) parts+=(--no-forward) ;;
      esac
    fi
  done
  file="$out/twin-$label-$device.json"
  if [ "$skip_twin" = 0 ]; then
    [ -x "$python" ] || command -v "$python" >/dev/null || die "no Python at $python (see bench/README.md, or pass --python)"
    echo "== PyTorch twin: $label on $device, $threads threads" >&2
    if ! "$python" bench/torch_twin.py --preset "$preset" --size "$size" --device "$device" \
      --threads "$threads" --batch 64 --steps "$steps" --reps "$reps" --warmup "$warmup" \
      "${parts[@]}" "${twin_extra[@]}" --json >"$file.tmp"; then
      echo "compare.sh: the twin failed for $label; its rows will be missing" >&2
      rm -f "$file.tmp"
      continue
    fi
    mv "$file.tmp" "$file"
  fi
  [ -f "$file" ] && twin_files+=("$file")
done

# ---- table -------------------------------------------------------------------------------------
table_python=python3
command -v python3 >/dev/null || table_python="$python"
"$table_python" bench/table.py --criterion "$criterion_dir" --stat "$stat" --filter "$filter" \
  "${markdown[@]}" "${twin_files[@]}" | tee "$out/table-$device.txt"
