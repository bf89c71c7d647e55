#!/usr/bin/env python3
"""Cold-process latency of `tao-scaffold generate` on the offline examples (ViT-B classifier, SegFormer-b0 ADE20K,
RT-DETR r50vd).

Each run copies a fresh TAO 7.3.0 workspace (not timed), then times a new ``tao-scaffold generate`` process
from spawn to exit, and splits that time by the progress lines the CLI prints on stderr (each line is
stamped with the time it arrived here):

  startup   interpreter start, ``import scaffolder.cli``, argument parser (incl. plug-in commands' imports)
  imports   from the CLI's clock start to "inspect:" (cmd_generate imports the pipeline: copier, black, libcst)
  inspect   "inspect:" -> "plan:"   (config/preprocessor reading, transformers auto-mapping tables)
  plan      "plan:" -> next line ("map:" when the port maps weights, else "render:")
  map       "map:" -> "render:"     (weight-name mapping, where the CLI reports that step)
  render    "render:" -> "patch:"   (Copier: template clone, render into staging)
  patch     "patch:" -> "format:"   (libcst console_scripts edits)
  format    "format:" -> "write:"   (black over the rendered Python)
  write     "write:" -> exit        (moves into the workspace, listing, interpreter shutdown)

    .venv/bin/python scripts/bench_generate.py -n 5 [--example vit|segformer|rtdetr|all] [--importtime]

``--importtime`` adds one run under ``python -X importtime`` and prints the slowest top-level imports, to
show where the startup and inspect time goes. CPU time (user+sys of the child) is printed beside wall
time, since on a shared machine wall time also measures the neighbours.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "examples" / "google-vit-base-patch16-224"
# --example name -> (model folder, port name)
EXAMPLES = {
    "vit": (EXAMPLE, "vit_imagenet100"),
    "segformer": (PROJECT / "examples" / "nvidia-segformer-b0-finetuned-ade-512-512", "seg_ade"),
    "rtdetr": (PROJECT / "examples" / "PekingU-rtdetr_r50vd", "rtdetr_coco"),
}
TARGET_S = 3.0
STEPS = ("startup", "imports", "inspect", "plan", "map", "render", "patch", "format", "write")
_LINE = re.compile(r"^\[\s*(?P<t>\d+\.\d+)s\] (?P<step>[a-z_]+):")
_IMPORT = re.compile(r"^import time:\s+(?P<self>\d+) \|\s+(?P<cum>\d+) \| (?P<indent>\s*)(?P<name>\S+)")


def default_workspace_template() -> Path:
    cache = os.environ.get("TAO_SCAFFOLD_TEST_CACHE")
    return (Path(cache).expanduser() if cache else Path.home() / ".cache" / "tao-scaffold") / "test-workspace-7.3.0"


def cli() -> list[str]:
    script = Path(sys.executable).with_name("tao-scaffold")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scaffolder.cli"]


def ensure_template(path: Path) -> Path:
    if (path / "tao-pytorch" / ".git").exists():
        return path
    print(f"building a TAO 7.3.0 workspace at {path} (once) ...", file=sys.stderr)
    subprocess.run([*cli(), "workspace", "init", str(path), "--from-pypi", "7.3.0"], check=True)
    return path


def one_run(template: Path, model: Path, name: str, scratch: Path, extra: list[str] | None = None,
            command: list[str] | None = None) -> dict:
    ws = scratch / "ws"
    if ws.exists():
        shutil.rmtree(ws)
    shutil.copytree(template, ws, symlinks=True)
    argv = [*(command or cli()), "generate", "--model", str(model), "--name", name, "--workspace", str(ws),
            *(extra or [])]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1,
                            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    arrivals: list[tuple[str, float, float]] = []  # (step, arrival since spawn, CLI clock)
    other: list[str] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        match = _LINE.match(line)
        if match:
            arrivals.append((match["step"], time.monotonic() - start, float(match["t"])))
        else:
            other.append(line.rstrip("\n"))
    rc = proc.wait()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(ws, ignore_errors=True)
    if rc != 0:
        tail = "\n".join(other[-5:])
        raise SystemExit(f"generate failed (exit {rc}):\n{tail}")
    steps: dict[str, float] = {}
    if arrivals:
        first_step, first_arrival, first_clock = arrivals[0]
        steps["startup"] = max(first_arrival - first_clock, 0.0)
        steps["imports"] = first_clock
        for (step, t0, _), (_, t1, _) in zip(arrivals, arrivals[1:]):
            steps[step] = steps.get(step, 0.0) + (t1 - t0)
        steps[arrivals[-1][0]] = steps.get(arrivals[-1][0], 0.0) + (wall - arrivals[-1][1])
    return {"wall": wall, "cpu": cpu, "steps": steps, "importtime": other}


def top_imports(lines: list[str], count: int) -> list[tuple[float, str]]:
    """Slowest imports that are not nested in another one (cumulative seconds, module)."""
    out = []
    for line in lines:
        match = _IMPORT.match(line)
        if match and not match["indent"]:
            out.append((int(match["cum"]) / 1e6, match["name"]))
    return sorted(out, reverse=True)[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--workspace-template", type=Path, default=default_workspace_template(),
                        help="TAO 7.3.0 workspace copied for each run (default: the test suite's cached one; "
                             "built with `workspace init --from-pypi 7.3.0` when missing)")
    parser.add_argument("--example", choices=[*EXAMPLES, "all"], default="all", help="which example(s) to time")
    parser.add_argument("--model", type=Path, help="time this model folder instead of the examples")
    parser.add_argument("--name", default="bench_port", help="port name with --model")
    parser.add_argument("--template", type=Path, help="pass --template to generate (e.g. a clean clone of this "
                        "checkout, to leave out Copier's dirty-checkout draft commit)")
    parser.add_argument("--importtime", action="store_true", help="one more run under python -X importtime")
    parser.add_argument("--top", type=int, default=15, help="imports to list with --importtime")
    parser.add_argument("--rtdetr", action="store_true", help="same as --example rtdetr")
    args = parser.parse_args()
    if args.rtdetr:
        args.example = "rtdetr"

    template = ensure_template(args.workspace_template)
    extra = ["--template", str(args.template)] if args.template else []
    if args.model:
        targets = [(args.model, args.name)]
    else:
        targets = list(EXAMPLES.values()) if args.example == "all" else [EXAMPLES[args.example]]
    for model, name in targets:
        bench(template, model, name, extra, args)
    return 0


def bench(template: Path, model: Path, name: str, extra: list[str], args) -> None:
    """Time ``args.runs`` cold generates of ``model`` as port ``name`` and print the table."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as scratch:
        for i in range(args.runs):
            run = one_run(template, model, name, Path(scratch), extra)
            runs.append(run)
            print(f"run {i + 1}/{args.runs}: {run['wall']:.2f} s wall, {run['cpu']:.2f} s CPU", file=sys.stderr)
        imports = None
        if args.importtime:
            imports = one_run(template, model, name, Path(scratch), extra,
                              command=[sys.executable, "-X", "importtime", "-m", "scaffolder.cli"])

    walls = [r["wall"] for r in runs]
    cpus = [r["cpu"] for r in runs]
    print(f"tao-scaffold generate --model {model.name} --name {name}: {len(runs)} cold runs, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'':10}{'min':>9}{'median':>9}")
    print(f"{'wall':10}{min(walls):9.2f}{statistics.median(walls):9.2f}  s")
    print(f"{'cpu':10}{min(cpus):9.2f}{statistics.median(cpus):9.2f}  s (user+sys)")
    print("per step (wall):")
    seen = list(dict.fromkeys(step for r in runs for step in r["steps"]))
    for step in [s for s in STEPS if s in seen] + [s for s in seen if s not in STEPS]:
        values = [r["steps"].get(step, 0.0) for r in runs]
        print(f"  {step:8}{min(values):9.2f}{statistics.median(values):9.2f}  s")
    verdict = "meets" if statistics.median(walls) <= TARGET_S else "misses"
    print(f"median {statistics.median(walls):.2f} s {verdict} the {TARGET_S:.0f} s target")
    if imports is not None:
        print(f"slowest top-level imports (-X importtime run: {imports['wall']:.2f} s wall, cumulative):")
        for seconds, module in top_imports(imports["importtime"], args.top):
            print(f"  {seconds:7.2f} s  {module}")


if __name__ == "__main__":
    sys.exit(main())
