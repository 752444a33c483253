#!/usr/bin/env bash
# One prepared check for a lent GPU machine (an H100), run from the repository root; at most ~8 minutes in all.
#
#     bash scripts/device_check.sh [OUT_JSON]           # default: $OUT/device_check.json, else ./device_check.json
#     SYMPE_DEVICE_CHECK_DRY=1 bash scripts/device_check.sh /tmp/dc.json   # dry run: checks only, no install/steps
#
# 1. checks: python, torch and CUDA, the sympe package and its dependencies; what is missing and how to install it
# 2. install: torch if absent, then `pip install -e .` (from wheels in $SYMPE_WHEELS=.whl when that folder exists,
#    else from the network); without a network it falls back to `pip install --no-deps -e .` and goes on
# 3. steps, each under `timeout` and all within the budget, each run whatever the previous one gave:
#    cuda_tests (python -m pytest -q -m cuda), prepare_data (QM9 with H from the installed qm9pack, offline),
#    benchmark (scripts/benchmark.py --device cuda --bf16, modest settings), train (200 steps of experiment=qm9_h)
# 4. ONE JSON file: environment, install, and per step its command, status (ok / failed / timeout / skipped / dry),
#    exit code, wall seconds, log tail, and the benchmark's JSON and the training's final loss / NLL lines.
# Knobs: SYMPE_DEVICE_CHECK_DRY=1, SYMPE_DEVICE_CHECK_INSTALL=0 (no install step), SYMPE_DEVICE_CHECK_BUDGET (seconds,
# default 470), PYTHON (default python3). Documented in docs/benchmarks.md ("Device check").
set -u
cd "$(dirname "$0")/.." || exit 2
START=$(date +%s)
BUDGET=${SYMPE_DEVICE_CHECK_BUDGET:-470}
DRY=${SYMPE_DEVICE_CHECK_DRY:-0}
DO_INSTALL=${SYMPE_DEVICE_CHECK_INSTALL:-1}
WHEELS=${SYMPE_WHEELS:-.whl}
PY=${PYTHON:-python3}
OUT_JSON=${1:-${OUT:+$OUT/device_check.json}}
OUT_JSON=${OUT_JSON:-device_check.json}
mkdir -p "$(dirname "$OUT_JSON")"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sympe_device_check.XXXXXX")
export PYTHONUNBUFFERED=1 SYMPE_DATA_ROOT=${SYMPE_DATA_ROOT:-$PWD/data}
STEPS="cuda_tests prepare_data benchmark train"

say() { echo "[device_check] $*"; }
left() { echo $((START + BUDGET - $(date +%s))); }

# run NAME TIMEOUT CMD...: run CMD under timeout (capped by the budget left), record exit code, wall time and log
run() {
    local name=$1 t=$2; shift 2
    printf '%s\n' "$*" >"$WORK/$name.cmd"
    if [ "$DRY" = 1 ]; then echo dry >"$WORK/$name.status"; say "$name: dry run, would run: $*"; return 0; fi
    local l; l=$(left)
    if [ "$l" -lt 30 ]; then
        echo "skipped: budget spent ($BUDGET s)" >"$WORK/$name.status"; say "$name: skipped, budget spent"; return 0
    fi
    [ "$t" -gt $((l - 10)) ] && t=$((l - 10))
    say "$name (timeout ${t}s): $*"
    local s; s=$(date +%s.%N)
    timeout --kill-after=10 "$t" "$@" >"$WORK/$name.log" 2>&1
    local rc=$?
    echo "$rc" >"$WORK/$name.rc"
    echo "$s $(date +%s.%N)" | awk '{printf "%.1f\n", $2 - $1}' >"$WORK/$name.wall"
    case $rc in 0) echo ok ;; 124|137) echo timeout ;; *) echo failed ;; esac >"$WORK/$name.status"
    say "$name: $(cat "$WORK/$name.status") (exit $rc, $(cat "$WORK/$name.wall") s)"
    tail -n 5 "$WORK/$name.log" | sed 's/^/    /'
}
skip() { printf '%s\n' "$2" >"$WORK/$1.cmd"; echo "skipped: $3" >"$WORK/$1.status"; say "$1: skipped ($3)"; }

# ------------------------------------------------------------------------------------------ 1. checks
ENV_PY='
import importlib, importlib.metadata as md, json, platform, sys
r = {"python": sys.version.split()[0], "python_path": sys.executable, "missing": [], "hints": []}
try:
    import torch
    r["torch"] = torch.__version__
    r["torch_cuda_build"] = torch.version.cuda
    r["cuda_available"] = torch.cuda.is_available()
    r["device"] = torch.cuda.get_device_name(0) if r["cuda_available"] else None
    if not r["cuda_available"]:
        r["hints"].append("torch sees no CUDA device: a CPU-only build (torch.version.cuda is None) needs the CUDA "
                          "build (pip install torch), else check nvidia-smi and the driver")
except Exception as e:
    r.update(torch=None, cuda_available=False, device=None)
    r["missing"].append("torch")
    r["hints"].append(f"torch does not import ({e}): pip install torch (the PyPI build brings CUDA)")
try:
    import sympe.diffusion.benchmarking  # noqa: F401
    r["sympe"] = md.version("sympe")
except Exception as e:
    r["sympe"] = None
    r["missing"].append("sympe")
    r["hints"].append(f"the sympe package does not import ({type(e).__name__}: {e}): pip install -e . in the repository root")
for mod, dist in (("torch_geometric", "torch-geometric"), ("pytorch_lightning", "pytorch-lightning"),
                  ("hydra", "hydra-core"), ("omegaconf", "omegaconf"), ("rdkit", "rdkit"), (None, "qm9pack"),
                  ("igraph", "igraph"), ("scipy", "scipy"), ("networkx", "networkx"), ("pytest", "pytest")):
    try:  # qm9pack is data files only: its distribution is what counts
        importlib.import_module(mod) if mod else md.distribution(dist)
    except Exception:
        r["missing"].append(dist)
deps = [d for d in r["missing"] if d not in ("torch", "sympe")]
if deps:
    r["hints"].append("missing: " + " ".join(deps) + ". With a network: pip install -e . ; without one, on a machine "
                      "with a network: python3 -m pip download --only-binary=:all: --python-version "
                      + ".".join(platform.python_version_tuple()[:2]) + " --platform manylinux2014_x86_64 -d .whl "
                      + " ".join(deps) + " (and their dependencies), carry .whl; this script installs from it")
print(json.dumps(r))
'
check_env() {  # writes $WORK/env_$1.json and prints what is missing
    if ! command -v "$PY" >/dev/null 2>&1; then
        say "MISSING: $PY (Python >= 3.10 with pip); install it, or run with PYTHON=/path/to/python3"
        return 1
    fi
    printf '%s\n' "$ENV_PY" >"$WORK/env.py"
    "$PY" "$WORK/env.py" >"$WORK/env_$1.json" 2>"$WORK/env_$1.err" || { say "environment check failed:"; cat "$WORK/env_$1.err"; }
    "$PY" - "$WORK/env_$1.json" <<'EOF' 2>/dev/null
import json, sys
r = json.load(open(sys.argv[1]))
print(f"[device_check] python {r['python']} ({r['python_path']}); torch {r['torch']} (CUDA build {r.get('torch_cuda_build')}); "
      f"CUDA available: {r['cuda_available']} {r['device'] or ''}; sympe {r['sympe']}")
for d in r["missing"]:
    print(f"[device_check] MISSING: {d}")
for h in r["hints"]:
    print(f"[device_check] how to fix: {h}")
EOF
}
say "repository $PWD; output $OUT_JSON; budget ${BUDGET}s; dry run: $DRY"
HAVE_PY=1
check_env before || HAVE_PY=0

# ------------------------------------------------------------------------------------------ 2. install
install() {
    local i=0
    pip_try() {  # pip_try TIMEOUT ARGS...: one pip call, logged as install_<i>
        i=$((i + 1)); run "install_$i" "$1" "$PY" -m pip install "${@:2}"
        [ "$(cat "$WORK/install_$i.status")" = ok ]
    }
    if ! "$PY" -c "import torch" 2>/dev/null; then
        pip_try 240 -q torch --retries 1 --timeout 15 || say "torch could not be installed (no network?)"
    fi
    if [ -d "$WHEELS" ] && pip_try 150 -q --no-index --find-links "$WHEELS" --no-build-isolation -e .; then return; fi
    if pip_try 150 -q --no-build-isolation --retries 0 --timeout 10 -e .; then return; fi
    say "pip install -e . failed (no network and no usable $WHEELS?); installing the package alone"
    pip_try 90 -q --no-deps --no-build-isolation -e .
}
if [ "$HAVE_PY" = 0 ]; then
    say "no python: nothing can run"
elif [ "$DRY" = 1 ]; then
    say "install: skipped (dry run)"
elif [ "$DO_INSTALL" != 1 ]; then
    say "install: skipped (SYMPE_DEVICE_CHECK_INSTALL=$DO_INSTALL)"
else
    install
    check_env after
fi

# ------------------------------------------------------------------------------------------ 3. steps
ENV_NOW=$WORK/env_after.json
[ -f "$ENV_NOW" ] || ENV_NOW=$WORK/env_before.json
CUDA=$("$PY" -c "import json,sys; print(int(bool(json.load(open(sys.argv[1])).get('cuda_available'))))" "$ENV_NOW" 2>/dev/null || echo 0)
SYMPE=$("$PY" -c "import json,sys; print(int(bool(json.load(open(sys.argv[1])).get('sympe'))))" "$ENV_NOW" 2>/dev/null || echo 0)
PREP='import os, time
from hydra import compose, initialize_config_dir
from sympe.datasets.config import build_splits_from_cfg
with initialize_config_dir(config_dir=os.path.abspath("configs"), version_base="1.3"):
    cfg = compose(config_name="config", overrides=["experiment=qm9_h"])
t = time.time()
splits = build_splits_from_cfg(cfg)
print("QM9 with H:", {k: len(v) for k, v in splits.items()}, f"{time.time() - t:.1f} s")'
CMD_TESTS=("$PY" -m pytest -q -m cuda -rs -p no:cacheprovider --continue-on-collection-errors)
CMD_PREP=("$PY" -c "$PREP")
CMD_BENCH=("$PY" scripts/benchmark.py --device cuda --bf16 --experiment qm9_h --batch-sizes 64 256 --warmup 3
           --train-steps 10 --sample-steps 5 --sample-batch 256 --breakers none sympe --nll --nll-batch 64)
CMD_TRAIN=("$PY" scripts/train_diffusion.py experiment=qm9_h train.max_steps=200 train.val_check_interval=100
           train.limit_val_batches=2 train.limit_eval_graphs=1024 train.eval_batch_size=256 train.precision=bf16-mixed
           train.ckpt_every_n_steps=0 train.ckpt_every_minutes=0 train.progress_bar=false train.log_every_n_steps=10
           "paths.runs_root=$WORK/runs")
if [ "$DRY" != 1 ] && { [ "$HAVE_PY" = 0 ] || [ "$CUDA" != 1 ] || [ "$SYMPE" != 1 ]; }; then
    why="no python"; [ "$HAVE_PY" = 1 ] && why="CUDA unavailable"; [ "$HAVE_PY" = 1 ] && [ "$CUDA" = 1 ] && why="sympe not installed"
    skip cuda_tests "${CMD_TESTS[*]}" "$why"; skip prepare_data "${CMD_PREP[*]}" "$why"
    skip benchmark "${CMD_BENCH[*]}" "$why"; skip train "${CMD_TRAIN[*]}" "$why"
else
    run cuda_tests 120 "${CMD_TESTS[@]}"
    run prepare_data 120 "${CMD_PREP[@]}"
    run benchmark 110 "${CMD_BENCH[@]}"
    run train 150 "${CMD_TRAIN[@]}"
fi

# ------------------------------------------------------------------------------------------ 4. one JSON file
ASSEMBLE='
import csv, glob, json, os, re, sys
work, out, steps, dry, budget, start, end = sys.argv[1:8]
def read(name, default=None):
    p = os.path.join(work, name)
    return open(p, errors="replace").read().strip() if os.path.exists(p) else default
def tail(name, n):
    text = read(name)
    return text.splitlines()[-n:] if text else []
def env(which):
    try:
        return json.loads(read(f"env_{which}.json"))
    except Exception:
        return None
def record(name, log_lines=40):
    status = read(f"{name}.status", "not run")
    rc = read(f"{name}.rc")
    r = {"command": read(f"{name}.cmd"), "status": status.split(":")[0], "reason": status.partition(": ")[2] or None,
         "exit_code": int(rc) if rc is not None else None,
         "wall_s": float(read(f"{name}.wall")) if read(f"{name}.wall") else None, "log_tail": tail(f"{name}.log", log_lines)}
    return r
result = {"script": "scripts/device_check.sh", "dry_run": dry == "1", "budget_s": int(budget),
          "wall_s": int(end) - int(start), "environment": env("after") or env("before"),
          "environment_before_install": env("before"),
          "install": [record(os.path.basename(p)[:-4], 15) for p in sorted(glob.glob(os.path.join(work, "install_*.cmd")))],
          "steps": {}}
for name in steps.split():
    r = record(name)
    if name == "cuda_tests":
        r["summary"] = next((l for l in reversed(r["log_tail"]) if re.search(r"\b(passed|failed|skipped|error|no tests ran)\b", l)), None)
    if name == "benchmark":
        r["result"] = None
        for line in reversed((read("benchmark.log") or "").splitlines()):
            if line.startswith("{") and "\"runs\"" in line:
                try:
                    r["result"] = json.loads(line)
                    break
                except ValueError:
                    pass
    if name == "train":
        log = (read("train.log") or "").splitlines()
        r["final_lines"] = [l for l in log if re.search(r"loss|nll|NLL", l)][-6:]
        r["final_metrics"] = {}
        for path in glob.glob(os.path.join(work, "runs", "**", "metrics.csv"), recursive=True):
            with open(path) as f:
                for row in csv.DictReader(f):
                    for k, v in row.items():
                        if v not in (None, "") and re.search(r"loss|nll", k):
                            r["final_metrics"][k] = float(v)
    result["steps"][name] = r
result["ok"] = all(s["status"] == "ok" for s in result["steps"].values())
with open(out, "w") as f:
    json.dump(result, f, indent=1)
status = {k: v["status"] for k, v in result["steps"].items()}
print(f"[device_check] wrote {out}: " + ", ".join(f"{k} {v}" for k, v in status.items()))
'
END=$(date +%s)
printf '%s\n' "$ASSEMBLE" >"$WORK/assemble.py"
if [ "$HAVE_PY" = 1 ] && "$PY" "$WORK/assemble.py" "$WORK" "$OUT_JSON" "$STEPS" "$DRY" "$BUDGET" "$START" "$END"; then
    :
else  # no python to write JSON with: a minimal record by hand
    printf '{"script": "scripts/device_check.sh", "dry_run": %s, "error": "no working %s to assemble the report", "ok": false, "steps": {}}\n' \
        "$([ "$DRY" = 1 ] && echo true || echo false)" "$PY" >"$OUT_JSON"
    say "wrote $OUT_JSON (minimal: no python)"
fi
rm -rf "$WORK"
exit 0
