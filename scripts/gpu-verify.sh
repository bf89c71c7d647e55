#!/usr/bin/env bash
# Generate and verify one port per task on a GPU host with no network and no Docker (the device's H200: Python
# 3.12 + CUDA torch preinstalled), optionally followed by the port-vs-HF throughput bench. Missing packages travel
# as wheels, built here by scripts/gpu-wheels.sh:
#   .whl/*.whl      copier, libcst, black, pylint, hydra-core, omegaconf, fvcore, open-clip-torch, ... (cp312)
#   .whl/tao/*.whl  nvidia-tao-core/-deploy 7.3.0 and nvidia-tao-pytorch 7.3.0 without its CUDA .so files
#
#   scripts/gpu-verify.sh [--ports vit,segformer,rtdetr|none] [--bench [PORTS]] [--out DIR] [--device gpu|cpu]
#                         [--jobs N] [--budget SECONDS] [--wheels DIR] [--no-install] [--workspace DIR]
#
# Ports (the examples of scripts/bench_verify.py, generated offline from their config.json):
#   vit        examples/google-vit-base-patch16-224              -> vit_imagenet100 (classification)
#   segformer  examples/nvidia-segformer-b0-finetuned-ade-512-512 -> seg_ade        (segmentation)
#   rtdetr     examples/PekingU-rtdetr_r50vd                      -> rtdetr_coco    (detection)
# Per port: inspect -> port.yml, generate --plan --model EXAMPLE (committed in the workspace), `verify --runner local
# --device gpu`; the next port runs even if one fails. A port passes when every stage but the TensorRT ones passed.
# --bench [PORTS] (default all three) generates what is missing and runs scripts/bench_port_throughput.py on them.
# Exit 0 only if every port passed (TensorRT stages skipped with their reason count as passed here: the host has no
# TensorRT; verify itself exits 1 for them with --device gpu) and the bench, if asked for, ran.
#
# What comes back (OUT, default $OUT or /tmp/gpu-verify; at most 6 files, flat): gpu-verify.log (all output),
# summary.json + summary.md (per port: status, stage statuses and seconds, wall times; host versions),
# reports.tgz (each port's port.yml, report.md/json, logs/ and probe results; no checkpoints/ONNX),
# bench.json + bench.txt with --bench. --budget (default 540 s: under the device's 10-minute command limit) stops
# starting ports/bench once spent and gives a running verify only what is left (it then writes a partial report).
# --device cpu, --wheels, --no-install and PYTHON=... rehearse the same flow on a CPU machine.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
OUTDIR="${OUT:-/tmp/gpu-verify}"
PORTS="vit,segformer,rtdetr"
BENCH=""
DEVICE=gpu
JOBS=6  # verify stages in parallel (16 cores on the H200 host)
BUDGET=540
WHEELS="$ROOT/.whl"
INSTALL=1
WS=/tmp/gpu-ws
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ports) PORTS="$2"; shift 2 ;;
    --bench) if [[ $# -gt 1 && "$2" != --* ]]; then BENCH="$2"; shift 2; else BENCH="vit,segformer,rtdetr"; shift; fi ;;
    --out) OUTDIR="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --wheels) WHEELS="$(realpath -m "$2")"; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    --workspace) WS="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpu-verify: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$PORTS" == none ]] && PORTS=""
mkdir -p "$OUTDIR"
OUTDIR="$(realpath "$OUTDIR")"
WORK="$(mktemp -d /tmp/gpu-verify-work.XXXXXX)"
exec > >(tee -a "$OUTDIR/gpu-verify.log") 2>&1
TEE_PID=$!
T0=$SECONDS
elapsed() { echo $((SECONDS - T0)); }
say() { printf '\n== [%4ss] %s\n' "$(elapsed)" "$*"; }

declare -A EXAMPLE=([vit]=examples/google-vit-base-patch16-224 [segformer]=examples/nvidia-segformer-b0-finetuned-ade-512-512
                    [rtdetr]=examples/PekingU-rtdetr_r50vd)
declare -A NAME=([vit]=vit_imagenet100 [segformer]=seg_ade [rtdetr]=rtdetr_coco)
for p in ${PORTS//,/ } ${BENCH//,/ }; do
  [[ -n "${EXAMPLE[$p]:-}" ]] || { echo "gpu-verify: unknown port $p (vit, segformer, rtdetr)" >&2; exit 2; }
done
export PYTHONPATH="$ROOT" TAO_SCAFFOLD_WHEEL_CACHE="$WHEELS/tao" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
TS=("$PY" -m scaffolder.cli)
STEPS="$WORK/steps.tsv"  # port, step, seconds, exit code
: >"$STEPS"
step() {  # step PORT STEP CMD...: run, time, record
  local port="$1" name="$2" t=$SECONDS rc
  shift 2
  "$@"
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$port" "$name" "$((SECONDS - t))" "$rc" >>"$STEPS"
  return $rc
}

summarize() {  # summary.json / summary.md from the steps and the reports; reports.tgz
  "$PY" - "$STEPS" "$WORK" "$OUTDIR" "$DEVICE" "$(elapsed)" "$PORTS" "$BENCH" <<'PY'
import json, sys
from pathlib import Path
steps_file, work, out, device, wall, ports, bench = sys.argv[1:8]
work, out = Path(work), Path(out)
TRT = {"gen_trt_engine", "trt_inference", "trt_evaluate", "trt_parity"}
steps = {}
for line in Path(steps_file).read_text().splitlines():
    port, name, seconds, rc = line.split("\t")
    steps.setdefault(port, {})[name] = {"seconds": int(seconds), "exit_code": int(rc)}
env = json.loads((work / "host.json").read_text()) if (work / "host.json").is_file() else {}
summary = {"device": device, "wall_s": int(wall), "host": env, "setup": steps.get("setup", {}), "ports": {}}
ok = all(s["exit_code"] == 0 for s in summary["setup"].values())
for port in [p for p in ports.split(",") if p]:
    entry = {"steps": steps.get(port, {})}
    report_file = work / port / "report" / "report.json"
    if report_file.is_file():
        report = json.loads(report_file.read_text())
        stages = [{"name": s["name"], "status": s["status"], "seconds": s.get("seconds"),
                   "reason": s.get("reason", "")[:300]} for s in report["stages"]]
        # every stage that can run here must have passed: only the TensorRT ones may be skipped (no TensorRT)
        failed = [s["name"] for s in stages if s["status"] != "passed" and s["name"] not in TRT]
        blocking = [w for w in report.get("why_failed", []) if w.split(" ", 1)[0] not in TRT]
        entry["not_passed"] = failed
        entry.update(port=report["port"], task=report["task"], verify_status=report["status"],
                     verify_seconds=report["seconds"], stages=stages, why_failed=report.get("why_failed", []),
                     trt_skipped=[s["name"] for s in stages if s["name"] in TRT and s["status"] == "skipped"],
                     trt_passed=[s["name"] for s in stages if s["name"] in TRT and s["status"] == "passed"])
        entry["status"] = "passed" if not failed and not blocking else "failed"
    else:
        entry["status"] = "failed" if entry["steps"] else "not run"
        entry["why_failed"] = ["no report.json (generate failed, verify crashed, or the time budget ran out)"]
    ok = ok and entry["status"] == "passed"
    summary["ports"][port] = entry
if bench:
    summary["bench"] = steps.get("bench", {"bench": {"exit_code": None, "seconds": None}})
    ok = ok and all(s.get("exit_code") == 0 for s in summary["bench"].values())
summary["ok"] = ok
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
lines = [f"# gpu-verify: {'ok' if ok else 'FAILED'} (device {device}, {wall} s wall)", ""]
if env:
    lines += ["host: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
lines += ["| port | status | generate s | verify s (wall) | stages passed / failed / skipped |", "|---|---|---|---|---|"]
for port, e in summary["ports"].items():
    st = e.get("stages", [])
    count = lambda s: sum(x["status"] == s for x in st)
    gen = sum(v["seconds"] for k, v in e["steps"].items() if k in ("inspect", "generate"))
    lines.append(f"| {e.get('port', port)} ({e.get('task', '?')}) | {e['status']} | {gen} | "
                 f"{e['steps'].get('verify', {}).get('seconds', '-')} | {count('passed')} / {count('failed')} / {count('skipped')} |")
for port, e in summary["ports"].items():
    lines += ["", f"## {e.get('port', port)}: {e['status']}", ""]
    if e.get("stages"):
        lines += ["| stage | status | s | reason |", "|---|---|---|---|"]
        lines += [f"| {s['name']} | {s['status']} | {s['seconds'] if s['seconds'] is not None else '-'} | "
                  f"{s['reason'].replace('|', '/')[:160]} |" for s in e["stages"]]
    for why in e.get("why_failed", []):
        lines.append(f"- {why[:300]}")
    if e.get("not_passed"):
        lines.append(f"- not passed (besides TensorRT): {', '.join(e['not_passed'])}")
if bench:
    lines += ["", f"bench: {summary['bench']}"]
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if ok else 1)
PY
  local rc=$?
  # report folders: no checkpoints, ONNX, engines, images, throwaway venvs
  local dirs
  dirs=$(cd "$WORK" && ls -d */ 2>/dev/null)
  [[ -n "$dirs" ]] || return $rc
  tar -czf "$OUTDIR/reports.tgz" -C "$WORK" --exclude='*/work/env' --exclude='*/work/_tools' --exclude='*/work/data' \
      --exclude='*.pth' --exclude='*.onnx' --exclude='*.npz' --exclude='*.engine' --exclude='*.ckpt' \
      --exclude='*.jpg' --exclude='*.png' --exclude='__pycache__' $dirs
  if [[ $(stat -c %s "$OUTDIR/reports.tgz") -gt 15000000 ]]; then  # the device brings back files up to 16 MiB
    tar -czf "$OUTDIR/reports.tgz" -C "$WORK" \
        $(cd "$WORK" && ls -d */port.yml */report/report.md */report/report.json */report/logs 2>/dev/null)
  fi
  return $rc
}

# ------------------------------------------------------------------------------------------------ setup
say "setup: $PY ($("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')), device $DEVICE, ports ${PORTS:-none}, bench ${BENCH:-no}"
if ! command -v git >/dev/null; then  # workspace init and generate need git: unpack the carried one
  deb=$(ls "$WHEELS"/git/git_*.deb 2>/dev/null | head -n1)
  if [[ -n "$deb" ]] && command -v dpkg >/dev/null && dpkg -x "$deb" /tmp/gpu-verify-git; then
    export PATH="/tmp/gpu-verify-git/usr/bin:$PATH" GIT_EXEC_PATH=/tmp/gpu-verify-git/usr/lib/git-core
  fi
  git --version || { echo "gpu-verify: no git on this host and none carried ($WHEELS/git/git_*.deb)" >&2; exit 2; }
fi
if [[ $INSTALL == 1 ]]; then
  site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  [[ -w "$site" ]] || { echo "gpu-verify: $site is not writable: the carried wheels cannot be installed" >&2; exit 2; }
  install_wheels() {
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$WHEELS"/*.whl \
      "$WHEELS"/tao/nvidia_tao_core-*.whl "$WHEELS"/tao/nvidia_tao_deploy-*.whl &&
    "$PY" -m scaffolder.tao_wheels "$WHEELS"/tao/nvidia_tao_pytorch-*.whl &&
    "$PY" scripts/install_eff_stub.py &&
    # wandb (20 MB + OpenTelemetry) is imported unconditionally by TAO but only used with WANDB_API_KEY set:
    # on a host without it, an import stub stands in (never on machines that have the real package).
    "$PY" - <<'PY'
import importlib.util, sysconfig, pathlib
if importlib.util.find_spec("wandb") is None:
    root = pathlib.Path(sysconfig.get_paths()["purelib"]) / "wandb"
    (root / "errors").mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text(
        '"""Import stub (no wandb on this host)."""\nfrom . import errors\n\n\ndef login(*a, **k):\n    return False\n\n\n'
        'def __getattr__(name):\n    if name.startswith("__"):\n        raise AttributeError(name)\n    return type(name, (), {})\n')
    (root / "errors" / "__init__.py").write_text("class UsageError(Exception):\n    pass\n")
    print("wandb import stub installed")
PY
  }
  step setup install install_wheels || { summarize; exit 1; }
fi
"$PY" - "$WORK/host.json" <<'PY'
import importlib.metadata as md, json, sys
info = {}
for name in ("torch", "torchvision", "transformers", "timm", "pytorch-lightning", "numpy", "onnx", "onnxruntime",
             "opencv-python-headless", "hydra-core", "copier", "nvidia-tao-core", "nvidia-tao-deploy"):
    try:
        info[name] = md.version(name)
    except md.PackageNotFoundError:
        info[name] = None
try:
    import torch
    info["cuda"] = torch.version.cuda
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
except Exception as exc:  # noqa: BLE001
    info["torch_error"] = f"{type(exc).__name__}: {exc}"
json.dump(info, open(sys.argv[1], "w"))
print("host:", info)
PY
rm -rf "$WS"
step setup workspace_init "${TS[@]}" workspace init "$WS" --from-pypi 7.3.0 || { summarize; exit 1; }

commit_ws() {  # generate wants clean repositories: commit each port like a user would before the next one
  local repo
  for repo in tao-core tao-pytorch tao-deploy; do
    git -C "$WS/$repo" add -A && git -C "$WS/$repo" -c user.name=gpu-verify -c user.email=gpu-verify@localhost \
      commit -q -m "$1" || return 1
  done
}
generate() {  # generate PORT: inspect -> port.yml -> generate --plan -> commit (once per port)
  local port="$1" dir="$WORK/$1"
  [[ -f "$dir/.generated" ]] && return 0
  mkdir -p "$dir"
  step "$port" inspect "${TS[@]}" inspect "${EXAMPLE[$port]}" --name "${NAME[$port]}" --out "$dir/port.yml" &&
  step "$port" generate "${TS[@]}" generate --plan "$dir/port.yml" --model "${EXAMPLE[$port]}" --workspace "$WS" &&
  commit_ws "tao-scaffold generate ${NAME[$port]}" &&
  touch "$dir/.generated"
}

# ------------------------------------------------------------------------------------------------ ports
for port in ${PORTS//,/ }; do
  left=$((BUDGET - $(elapsed) - 20))
  if (( left < 60 )); then
    say "$port: not started (budget ${BUDGET}s: $(elapsed)s spent)"
    continue
  fi
  say "$port (${NAME[$port]} from ${EXAMPLE[$port]}): generate + verify --device $DEVICE (up to ${left}s)"
  t=$SECONDS
  if generate "$port"; then
    left=$((BUDGET - $(elapsed) - 20))
    step "$port" verify timeout --signal=TERM --kill-after=15 "$left" "${TS[@]}" verify --workspace "$WS" \
      --name "${NAME[$port]}" --runner local --device "$DEVICE" --jobs "$JOBS" --report "$WORK/$port/report"
    echo "verify exit code: $? (1 with --device gpu while the TensorRT stages are skipped: see summary)"
  fi
  say "$port: $((SECONDS - t))s wall (generate + verify)"
  summarize >/dev/null  # keep summary.json current in case the command is stopped
done

# ------------------------------------------------------------------------------------------------ bench
if [[ -n "$BENCH" ]]; then
  left=$((BUDGET - $(elapsed) - 15))
  if (( left < 45 )); then
    say "bench: not started (budget ${BUDGET}s: $(elapsed)s spent)"
  else
    say "bench: ${BENCH} (up to ${left}s)"
    for port in ${BENCH//,/ }; do generate "$port"; done
    bench_device=$([[ $DEVICE == gpu ]] && echo cuda || echo cpu)
    names=$(for p in ${BENCH//,/ }; do printf '%s,' "$p"; done)
    step bench bench timeout --signal=TERM --kill-after=10 "$left" "$PY" scripts/bench_port_throughput.py \
      --workspace "$WS" --ports "${names%,}" --device "$bench_device" --json "$OUTDIR/bench.json" ${BENCH_ARGS:-} \
      | tee "$OUTDIR/bench.txt"
  fi
fi

say "summary"
summarize
rc=$?
echo "gpu-verify: $(elapsed)s wall, exit $rc; files in $OUTDIR: $(ls "$OUTDIR" | tr '\n' ' ')"
rm -rf "$WORK"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # the log is complete before the command returns
exit $rc
