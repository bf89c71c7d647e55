#!/usr/bin/env python
"""Benchmark: wall time of a cold ``tao-scaffold verify --runner local --device cpu`` of an example port.

    .venv/bin/python scripts/bench_verify.py [--port vit|rtdetr|segformer] [--workspace WS] [--json out.json] [--jobs N] [--keep]

``--port vit`` (default): the ViT-B classification port, target 3 min. ``--port rtdetr``: the RT-DETR r50vd
detection port (``examples/PekingU-rtdetr_r50vd`` as ``rtdetr_coco``), target 4 min.
``--port segformer``: the SegFormer-b0 ADE20K port, target 3 min.

Without ``--workspace`` it builds one (``workspace init --from-pypi 7.3.0``, from the wheel cache) in a
temporary folder and generates the example's port (``vit_imagenet100`` from
``examples/google-vit-base-patch16-224``, or ``seg_ade`` from ``examples/nvidia-segformer-b0-finetuned-ade-512-512``); with
``--workspace`` the port must already be generated there. "Cold": a new report folder (so the throwaway
console-script venv is built too) and a fresh ``tao-scaffold`` process. Prints per-stage wall and CPU
seconds (CPU = user+sys of the stage's child processes; on a shared machine it is the steadier number),
the total against the 3-minute target, and the load average, since other work on the machine slows
every stage. Not a test: it never fails on time, only when verify itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
# port -> (example folder, port name, verify wall-time target in seconds)
PORTS = {
    "vit": (PROJECT / "examples" / "google-vit-base-patch16-224", "vit_imagenet100", 180.0),
    "rtdetr": (PROJECT / "examples" / "PekingU-rtdetr_r50vd", "rtdetr_coco", 240.0),
    "segformer": (PROJECT / "examples" / "nvidia-segformer-b0-finetuned-ade-512-512", "seg_ade", 180.0),
}


def tao_scaffold() -> list[str]:
    script = Path(sys.executable).with_name("tao-scaffold")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scaffolder.cli"]


def prepare_workspace(root: Path, example: Path, name: str) -> Path:
    ws = root / "ws"
    cached = Path(os.environ.get("TAO_SCAFFOLD_TEST_CACHE", Path.home() / ".cache" / "tao-scaffold")) / "test-workspace-7.3.0"
    t0 = time.monotonic()
    if cached.is_dir():
        shutil.copytree(cached, ws, symlinks=True)
        how = f"copied {cached}"
    else:
        subprocess.run([*tao_scaffold(), "-q", "workspace", "init", str(ws), "--from-pypi", "7.3.0"], check=True)
        how = "workspace init --from-pypi 7.3.0"
    print(f"workspace: {how} ({time.monotonic() - t0:.1f}s)", file=sys.stderr)
    generate_port(ws, example, name)
    return ws


def generate_port(ws: Path, example: Path, name: str, *, allow_dirty: bool = False) -> None:
    """``tao-scaffold generate --model EXAMPLE --name NAME`` into ``ws`` (offline: the example is a local folder);
    ``allow_dirty`` for a second port in a workspace whose first one is not committed."""
    t0 = time.monotonic()
    subprocess.run([*tao_scaffold(), "-q", "generate", "--model", str(example), "--name", name, "--workspace", str(ws),
                    *(["--allow-dirty"] if allow_dirty else [])], check=True, stdout=subprocess.DEVNULL)
    print(f"generate {name}: {time.monotonic() - t0:.1f}s", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", choices=sorted(PORTS), default="vit", help="which example port to verify")
    parser.add_argument("--workspace", type=Path, help="workspace with the port already generated")
    parser.add_argument("--json", type=Path, help="also write the per-stage numbers here")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace and report")
    args = parser.parse_args()
    example, name, target_s = PORTS[args.port]

    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        ws = args.workspace.resolve() if args.workspace else prepare_workspace(tmp, example, name)
        report_dir = tmp / "report"
        load_before = os.getloadavg()
        cmd = [*tao_scaffold(), "verify", "--workspace", str(ws), "--name", name, "--runner", "local",
               "--device", "cpu", "--report", str(report_dir), "--jobs", str(args.jobs)]
        print("$ " + " ".join(cmd), file=sys.stderr)
        t0 = time.monotonic()
        usage0 = os.times()
        proc = subprocess.run(cmd)
        wall = time.monotonic() - t0
        usage1 = os.times()
        load_after = os.getloadavg()
        report = json.loads((report_dir / "report.json").read_text())
        cpu_total = (usage1.children_user - usage0.children_user) + (usage1.children_system - usage0.children_system)

        rows = [(s["name"], s["status"], s["seconds"], s.get("cpu_seconds")) for s in report["stages"]]
        print()
        print(f"{'stage':<18} {'status':<8} {'wall s':>8} {'CPU s':>8}")
        print("-" * 46)
        for name, status, seconds, cpu in rows:
            wall_s = f"{seconds:8.1f}" if status != "skipped" else f"{'-':>8}"
            cpu_s = f"{cpu:8.1f}" if cpu is not None else f"{'-':>8}"
            print(f"{name:<18} {status:<8} {wall_s} {cpu_s}")
        print("-" * 46)
        stage_sum = sum(r[2] for r in rows if r[1] != "skipped")
        print(f"{'sum of stages':<27} {stage_sum:8.1f}")
        print(f"{'verify wall (total)':<27} {wall:8.1f} {cpu_total:8.1f}   (target <= {target_s:.0f}s: "
              f"{'met' if wall <= target_s else 'NOT met'})")
        print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before / {load_after[0]:.2f} after "
              f"(>{os.cpu_count()} means other work competed for the CPUs); jobs={args.jobs}")
        print(f"verify status: {report['status']} (exit {proc.returncode}); report: {report_dir / 'report.md'}")
        if args.json:
            args.json.write_text(json.dumps({
                "wall_s": round(wall, 1), "cpu_s": round(cpu_total, 1), "target_s": target_s, "port": name,
                "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count(), "jobs": args.jobs,
                "status": report["status"],
                "stages": [{"name": n, "status": st, "seconds": s, "cpu_seconds": c} for n, st, s, c in rows],
            }, indent=2) + "\n")
        return 0 if proc.returncode == 0 else 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
