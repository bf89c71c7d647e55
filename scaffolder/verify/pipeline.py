"""Run a verification: preflight, stages (in dependency order, up to ``--jobs`` at a time), report.

``verify(workspace, name, options, ...)`` is the whole ``tao-scaffold verify`` command minus argument
parsing. Scheduling: a stage starts when the stages it ``requires`` have finished; if one of them did
not pass, it is skipped ("needs train (failed: ...)"), and a skip inherits the prerequisite's
required-ness (the TRT chain skipped for lack of TensorRT stays optional). Independent stages run in
parallel threads (each mostly waits on a child process); the long chain train -> export ->
deploy-preprocess (-> TensorRT) is dispatched first so the quick checks fill the other worker, and a stage
with ``early`` requirements starts as soon as the artifact it needs exists (deploy-preprocess and
gen_trt_engine need export's ONNX file, not the end of export's parity check).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable

from scaffolder.errors import ScaffoldError
from scaffolder.verify import report as report_mod
from scaffolder.verify.context import MARKER, Options, VerifyContext
from scaffolder.verify.model import PASSED, SKIPPED, StageResult
from scaffolder.verify.port import load_port
from scaffolder.verify.progress import Board
from scaffolder.verify.stages import ALIASES, STAGE_NAMES, STAGES, Stage
from scaffolder.verify.tasks import get_task

DEFAULT_REPORT_ROOT = ".tao-scaffold-verify"
_BY_NAME = {stage.name: stage for stage in STAGES}


def _priority(name: str) -> tuple[int, int]:
    """Dispatch order: the stage's own ``priority``, then STAGES order."""
    return _BY_NAME[name].priority, STAGE_NAMES.index(name)


def parse_stages(spec: str | None) -> list[str]:
    if not spec:
        return list(STAGE_NAMES)
    chosen: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        names = ALIASES.get(item, (item,))
        for name in names:
            if name not in STAGE_NAMES:
                raise ScaffoldError(f"unknown stage {item!r}",
                                    f"choose from {', '.join(STAGE_NAMES)} (or the aliases {', '.join(ALIASES)})")
            if name not in chosen:
                chosen.append(name)
    if not chosen:
        raise ScaffoldError("--stages selects no stage", f"choose from {', '.join(STAGE_NAMES)}")
    return chosen


def gpu_visible() -> bool:
    return bool(shutil.which("nvidia-smi")) and Path("/dev/nvidiactl").exists()


def default_report_dir(workspace: Path, name: str) -> Path:
    return Path(workspace).expanduser().absolute() / DEFAULT_REPORT_ROOT / name


def prepare_report_dir(report_dir: Path) -> None:
    """Create the report folder, or clean the one an earlier verify run left (never someone else's)."""
    if report_dir.exists() and any(report_dir.iterdir()) and not (report_dir / MARKER).is_file():
        raise ScaffoldError(f"--report {report_dir} exists and is not a verify report folder",
                            "choose a new or empty folder (verify cleans its own folders between runs)")
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / MARKER).write_text("tao-scaffold verify report folder; safe to delete\n", encoding="utf-8")
    for stale in ("logs", "report.json", "report.md"):
        path = report_dir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def run_stages(ctx: VerifyContext, selected: list[str], board: Board, jobs: int = 2,
               results: dict[str, StageResult] | None = None) -> list[StageResult]:
    """Run the selected stages; ``results`` (filled as stages finish) holds the partial outcome on Ctrl-C."""
    stages = [cls() for cls in STAGES]
    results = {} if results is None else results
    for stage in stages:
        if stage.name not in selected:
            line = ctx.rerun_line(stage.name)
            results[stage.name] = StageResult(stage.name, SKIPPED, "not selected (--stages)", required=False,
                                              command=line, rerun=line)
    pending = sorted((s for s in stages if s.name in selected), key=lambda s: _priority(s.name))
    running: dict[Future, Stage] = {}

    def settle(stage: Stage, result: StageResult) -> None:
        results[stage.name] = result
        board.finish(result)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="verify") as pool:
        try:
            while pending or running:
                dispatched = True
                while dispatched and len(running) < max(1, jobs):
                    dispatched = False
                    for stage in list(pending):
                        deps = [d for d in stage.requires if d in selected]
                        early = {d for d in deps if d in stage.early and ctx.artifact(stage.early[d]) is not None}
                        if any(d not in results and d not in early for d in deps):
                            continue
                        pending.remove(stage)
                        dispatched = True
                        blocker = next((results[d] for d in deps
                                        if d not in early and results[d].status != PASSED), None)
                        if blocker is not None:
                            settle(stage, _skipped(ctx, stage, f"needs {blocker.name} ({blocker.status}"
                                                   f"{': ' + blocker.reason if blocker.reason else ''})",
                                                   stage.required and blocker.required))
                            break
                        try:
                            skip = stage.precheck(ctx)
                        except Exception as exc:  # noqa: BLE001 - e.g. the dataset could not be made
                            skip = None
                            settle(stage, StageResult(stage.name, "failed", f"{type(exc).__name__}: {exc}",
                                                      rerun=ctx.rerun_line(stage.name), command=ctx.rerun_line(stage.name)))
                            break
                        if skip is not None:
                            settle(stage, _skipped(ctx, stage, skip.reason, skip.required and stage.required))
                            break
                        board.start(stage.name)
                        running[pool.submit(stage.execute, ctx)] = stage
                        break
                if not running:
                    continue
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    stage = running.pop(future)
                    settle(stage, future.result())
        except BaseException:
            ctx.cancel.set()
            ctx.runner.cancel()
            raise
    return [results[s.name] for s in stages]


def _skipped(ctx: VerifyContext, stage: Stage, reason: str, required: bool) -> StageResult:
    log = ctx.logs_dir / f"{stage.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# tao-scaffold: {stage.name} skipped: {reason}\n", encoding="utf-8")
    line = ctx.rerun_line(stage.name)
    return StageResult(stage.name, SKIPPED, reason, log=ctx.rel(log), command=line, rerun=line, required=required)


def _rerun_argv(workspace: Path, name: str, options: Options, report_dir: Path) -> list[str]:
    argv = ["tao-scaffold", "verify", "--workspace", str(workspace), "--name", name, "--runner", options.runner,
            "--device", options.device]
    if options.data:
        argv += ["--data", str(options.data)]
    argv += ["--report", str(report_dir)]
    if options.runner == "local" and options.python and options.python != sys.executable:
        argv += ["--python", options.python]
    if options.trt_precisions:
        argv += ["--trt-precision", ",".join(options.trt_precisions)]
    if options.model:
        argv += ["--model", options.model]
    if options.strict:
        argv.append("--strict")
    return argv


def _make_runner(port, options: Options, work_dir: Path, report_dir: Path, images: dict[str, str] | None):
    if options.runner == "local":
        from scaffolder.verify.runner_local import LocalRunner

        return LocalRunner(port.root, work_dir, options.device, python=options.python)
    if options.runner == "docker":
        from scaffolder.verify.runner_docker import DockerRunner

        return DockerRunner(port.root, work_dir, options.device, images=images, log_dir=report_dir / "logs")
    raise ScaffoldError(f"unknown runner {options.runner!r}", "use --runner local or --runner docker")


def preflight(ctx: VerifyContext, options: Options, images: dict[str, str] | None) -> list[str]:
    """Doctor-style checks: each problem is ``what -- fix``; also fills ``ctx.environment``."""
    problems: list[str] = []
    if options.runner == "docker":
        from scaffolder.verify.runner_docker import DEFAULT_IMAGES, docker_preflight

        repos = ["tao-pytorch"] + (["tao-deploy"] if ctx.port.deploy_dir is not None else [])
        problems += docker_preflight(ctx.port.root, {**DEFAULT_IMAGES, **(images or {})}, options.device, repos)
        if problems:
            return problems
    else:
        from scaffolder.verify.runner_local import python_info

        info = python_info(ctx.runner.python)
        if not info:
            return [f"cannot run {ctx.runner.python} -- pass --python PATH to an interpreter with TAO's dependencies "
                    "(torch, pytorch_lightning, hydra-core, onnx, onnxruntime), or use --runner docker"]
    out = ctx.probe_dir / "env_info.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = ["python", ctx.runner.probe_script("env_info.py"), "--out", ctx.target(out)]
    if options.device == "gpu":
        argv.append("--gpu")
    try:
        ctx.runner.run(argv, repo="tao-pytorch", log_path=ctx.logs_dir / "preflight.log", timeout=600)
    except ScaffoldError as exc:
        return [exc.one_line()]
    from scaffolder.verify.context import _read_json

    info = _read_json(out)
    packages = info.get("packages", {})
    missing = [p for p in ("torch", "pytorch-lightning", "onnx", "onnxruntime") if p not in packages
               and not (p == "onnxruntime" and "onnxruntime-gpu" in packages)]
    if missing:
        where = "the tao-pytorch image" if options.runner == "docker" else ctx.runner.python
        problems.append(f"{', '.join(missing)} not installed in {where} -- install TAO's dependencies there "
                        "(pip install -r the repo's requirements) or pass --python / --runner docker")
    if options.device == "gpu" and not info.get("cuda_available"):
        problems.append(f"no CUDA GPU visible to the tao-pytorch environment ({info.get('cuda_error', 'torch.cuda')}) "
                        "-- check nvidia-smi and the driver, or run with --device cpu")
    ctx.environment.update({
        "target_python": info.get("python"),
        "target_platform": info.get("platform"),
        "packages": packages,
        **({"gpu": info["gpu"], "cuda": info.get("cuda")} if info.get("gpu") else {}),
    })
    return problems


def verify(workspace: Path | str, name: str, options: Options, *, report_dir: Path | str | None = None,
           progress: Callable[[str], None] = print, images: dict[str, str] | None = None,
           tty: bool | None = None, quiet: bool = False) -> tuple[int, dict[str, Any]]:
    """Run ``tao-scaffold verify``; returns (exit code, report dict). Bad input raises ScaffoldError."""
    started_at = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    t0 = time.monotonic()
    port = load_port(workspace, name)
    task = get_task(port.task).for_port(port)
    selected = parse_stages(",".join(options.stages) if options.stages else None)
    if options.data and not Path(options.data).expanduser().is_dir():
        raise ScaffoldError(f"--data {options.data} is not a folder", "pass a dataset folder in the task's format")
    report_dir = Path(report_dir).expanduser().absolute() if report_dir else default_report_dir(port.root, name)
    if options.runner == "docker":
        try:
            report_dir.relative_to(port.root)
        except ValueError:
            raise ScaffoldError(f"--report {report_dir} is outside the workspace {port.root}",
                                "with --runner docker the work files must be inside the workspace (it is what "
                                "the containers mount); leave --report at its default or pick a folder in it") from None
    prepare_report_dir(report_dir)
    work_dir = report_dir / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    options.argv_for_rerun = _rerun_argv(port.root, name, options, report_dir)
    runner = _make_runner(port, options, work_dir, report_dir, images)
    board = Board([n for n in STAGE_NAMES if n in selected], progress, tty=tty, verbose=options.verbose, quiet=quiet)
    ctx = VerifyContext(port, task, runner, options, report_dir, work_dir, on_line=board.line)
    ctx.environment.update({
        "tao_version": port.workspace.tao_version,
        "tao_repos": port.workspace.repo_versions(),
        "host": f"{platform.node()} ({platform.platform()}), {os.cpu_count()} CPUs",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "tao_scaffold_python": sys.version.split()[0],
    })
    board.note(f"verify {port.name} ({port.task}) in {port.root}: runner {options.runner}, device {options.device}, "
               f"{len(selected)} stage(s), report {report_dir}")
    results: list[StageResult] = []
    partial: dict[str, StageResult] = {}
    interrupted = False
    try:
        runner.start()
        problems = preflight(ctx, options, images)
        if problems:
            for problem in problems:
                board.note(f"preflight: {problem}")
            raise ScaffoldError(f"preflight failed: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
        if any(_BY_NAME[s].needs_data for s in selected):
            try:
                board.note(f"data: {ctx.dataset().description}")
            except ScaffoldError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ScaffoldError(f"could not prepare the verification dataset: {exc}") from None
        board.open()
        try:
            results = run_stages(ctx, selected, board, jobs=options.jobs, results=partial)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (scaffolder.signals.Terminated)
            interrupted = exc
            why = f"interrupted ({exc})" if str(exc) else "interrupted (Ctrl-C)"
            results = [partial.get(n) or StageResult(n, SKIPPED, why, rerun=ctx.rerun_line(n),
                                                     command=ctx.rerun_line(n)) for n in STAGE_NAMES]
        finally:
            board.close()
        trt = ctx.trt() if any(s in selected for s in ("imports", "gen_trt_engine")) else None
        if trt is not None:
            ctx.environment["tensorrt"] = trt.versions or trt.reason
        ctx.environment.update(runner.describe())
    finally:
        runner.close()
    report = report_mod.build(port=port, options=options, results=results, environment=ctx.environment,
                              seconds=time.monotonic() - t0, report_dir=report_dir, work_dir=work_dir,
                              started=started_at, titles={s.name: s.title for s in STAGES}, interrupted=bool(interrupted))
    json_path, md_path = report_mod.write(report, report_dir)
    if interrupted:
        raise interrupted
    if not quiet:
        for gap in report["not_exercised"]:
            board.note(f"NOT EXERCISED: {gap}")
        verdict = "PASSED" if report["exit_code"] == 0 else "FAILED"
        why = f" ({'; '.join(report['why_failed'])})" if report["why_failed"] else ""
        warned = f", {report['warnings']} warning(s)" if report["warnings"] else ""
        board.note(f"verify {port.name}: {verdict} in {report['seconds']:.0f}s{warned}{why[:400]}")
        board.note(f"report: {md_path} (and report.json)")
    return report["exit_code"], report
