"""``consistency`` (cross-phase rules on the files), ``imports`` (every generated module imports) and
``l0`` (the generated L0 tests)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from scaffolder.verify.consistency_rules import ERROR, check_port
from scaffolder.verify.stages.base import Stage, StageFailed, StageRun, StageSkipped

TRT_PACKAGES = ("tensorrt", "pycuda")


class ConsistencyStage(Stage):
    name = "consistency"
    priority = 0
    title = "cross-phase rules (mean/std, file hand-offs, checkpoint names, head width, input size, ONNX names, packaging)"

    def run(self, ctx, run: StageRun) -> None:
        violations = check_port(ctx.port, ctx.task, strict=ctx.options.strict)
        errors = [v for v in violations if v.severity == ERROR]
        warnings = [v for v in violations if v.severity != ERROR]
        for violation in violations:
            run.log(f"{violation.severity}: {violation}")
        run.metrics["errors"] = len(errors)
        run.metrics["warnings"] = len(warnings)
        run.messages += [str(v) for v in errors]
        run.warnings += [str(v) for v in warnings]
        if errors:
            run.reason = f"{len(errors)} violation{'s' if len(errors) > 1 else ''}; first: {errors[0]}"


# Missing here, and no fault of the environment: pip cannot install them (ngcbase is NGC's own, only in TAO's images).
NOT_ON_PYPI = ("ngcbase",)
ENVIRONMENT_FIX = ("pip install -r tao-core/requirements.txt into {python} (what TAO's own code imports), or "
                   "verify --python PY with an environment that has TAO's dependencies, or --runner docker")


def stock_modules(port, repo: str) -> list[str]:
    """TAO's own modules that the port's modules of ``repo``'s environment stand on: the console-script module of
    the port's reference network in ``repo`` (from its setup.py) and, in tao-pytorch's, that network's tao-core
    config (the port's tao-core modules import tao-core)."""
    from scaffolder.layout import PACKAGES
    from scaffolder.tasks import task_named
    from scaffolder.workspace import script_name

    network = task_named(port.task).tao_network
    found = [entry.split("=", 1)[1].strip().split(":", 1)[0] for entry in port.workspace.console_scripts(repo)
             if "=" in entry and script_name(entry) == network]
    core = port.workspace.package("tao-core") / "config" / network / "default_config.py"
    if repo == "tao-pytorch" and core.is_file():
        found.append(f"{PACKAGES['tao-core']}.config.{network}.default_config")
    return found[:2]


def environment_problem(repo: str, baseline: dict, trt_available: bool) -> dict | None:
    """What is wrong with ``repo``'s environment, from the probe's import of TAO's own module (None: nothing).
    Packages a missing TensorRT explains, and those pip cannot install, are not the environment's fault."""
    excused = set(NOT_ON_PYPI) | (set() if trt_available or repo != "tao-deploy" else set(TRT_PACKAGES))
    missing = [m for m in baseline.get("missing", []) if m not in excused]
    if baseline.get("status") != "failed" and not missing:
        return None
    errors = baseline.get("errors", {})
    error = baseline.get("error") or next((errors[m] for m in missing if m in errors), "")
    return {"repo": repo, "module": baseline.get("module"), "missing": missing, "error": error,
            "imports_with_stubs": baseline.get("status") != "failed"}


class ImportsStage(Stage):
    name = "imports"
    priority = 10
    title = "every generated module imports in its repo's environment (after TAO's own module of that repo)"

    def run(self, ctx, run: StageRun) -> None:
        port = ctx.port
        groups = [("tao-pytorch", port.modules("tao-core") + port.modules("tao-pytorch"))]
        if port.deploy_dir is not None:
            groups.append(("tao-deploy", port.modules("tao-deploy")))
        totals: dict[str, int] = {}
        stubbed, inconclusive, stubbed_packages, problems = [], [], [], []
        for repo, modules in groups:
            if not modules:
                continue
            # Both repos alike: a third-party package this environment lacks is stubbed (never nvidia_tao_*), and
            # without TensorRT the deploy modules get TensorRT/pycuda stubs.
            args = ["--stub-missing", *modules]
            if repo == "tao-deploy" and not ctx.trt().available:
                args = ["--stub", ",".join(TRT_PACKAGES), *args]
            args = [arg for module in stock_modules(port, repo) for arg in ("--baseline", module)] + args
            _result, data = run.probe("import_modules.py", args, repo=repo, tag=repo)
            stubbed_packages += data.get("stubbed_packages", [])
            if data.get("crashed"):
                raise StageFailed(f"import probe in {repo} failed: {data.get('error')}", [f"log: {ctx.rel(run.log_path)}"])
            for baseline in data.get("baselines", []):
                run.metrics.setdefault("baseline", {})[baseline["module"]] = baseline["status"]
                problem = environment_problem(repo, baseline, ctx.trt().available)
                problems += [problem] if problem else []
            for module, item in data.get("modules", {}).items():
                status = item.get("status")
                totals[status] = totals.get(status, 0) + 1
                if status == "failed":
                    run.messages.append(f"{module}: {item.get('error')}")
                elif status == "stubbed":
                    stubbed.append(module)
                elif status == "inconclusive":
                    inconclusive.append(f"{module}: {item.get('error')}")
        run.metrics.update({"modules": sum(totals.values()), **{k: v for k, v in sorted(totals.items())}})
        if stubbed:
            packages = sorted(set(stubbed_packages))
            run.metrics["stubbed_packages"] = packages
            why = [f"TensorRT/pycuda: {ctx.trt().reason}"] if set(packages) & set(TRT_PACKAGES) else []
            why += [f"{', '.join(sorted(set(packages) - set(TRT_PACKAGES)))}: missing from this environment"] \
                if set(packages) - set(TRT_PACKAGES) else []
            run.warnings.append(
                f"{len(stubbed)} modules were imported with {', '.join(packages)} stubbed ({'; '.join(why)}), which "
                "checks their own code and TAO imports, not those packages: "
                + ", ".join(m.rsplit(".", 2)[-2] + "." + m.rsplit(".", 1)[-1] for m in stubbed)
            )
        run.warnings += [f"not verifiable with stubs: {m}" for m in inconclusive]
        if problems:
            self._blame_environment(ctx, run, problems)
        if run.messages:
            run.reason = f"{len(run.messages)} module{'s' if len(run.messages) > 1 else ''} failed to import; first: {run.messages[0]}"

    @staticmethod
    def _blame_environment(ctx, run: StageRun, problems: list[dict]) -> None:
        """TAO's own module does not import here: the environment's problem, reported as such (a skip that fails
        verify). The port's modules still fail the stage when TAO's imports with the same stubs and theirs do not."""
        parts = []
        for p in problems:
            missing = f"missing {', '.join(p['missing'])}" if p["missing"] else "it fails even with stubs"
            parts.append(f"TAO's own {p['module']} ({p['repo']}) does not import here: {p['error']} ({missing})")
        packages = sorted({m for p in problems for m in p["missing"]})
        run.metrics["environment_missing"] = packages
        reason = ("environment problem, not a port failure: " + "; ".join(parts) + " -- fix: "
                  + ENVIRONMENT_FIX.format(python=getattr(ctx.runner, "python", "python")))
        if run.messages and all(p["imports_with_stubs"] for p in problems):
            run.warnings.append(reason)  # TAO imports with the stubs, the port does not: the port's failure
            return
        run.warnings += [f"not conclusive while TAO's own modules fail: {m}" for m in run.messages]
        run.messages.clear()
        raise StageSkipped(reason)


class L0Stage(Stage):
    name = "l0"
    priority = 11
    title = "the generated L0 tests (pytest -m 'cv_unit and NAME' in tao-pytorch; tests/NAME in tao-deploy)"

    def run(self, ctx, run: StageRun) -> None:
        port = ctx.port
        suites = []
        if port.pytorch_tests.is_dir():
            suites.append(("tao-pytorch", port.pytorch_tests, ["-m", f"cv_unit and {port.name}"]))
        else:
            run.messages.append(f"{port.rel(port.pytorch_tests)} does not exist (no tao-pytorch L0 tests)")
        if port.deploy_dir is not None:
            if port.deploy_tests.is_dir():
                suites.append(("tao-deploy", port.deploy_tests, []))
            else:
                run.messages.append(f"{port.rel(port.deploy_tests)} does not exist (no tao-deploy L0 tests)")
        totals = {"tests": 0, "passed": 0, "failed": 0, "skipped": 0}
        for repo, folder, marks in suites:
            xml = ctx.work_dir / "l0" / f"{repo}.xml"
            xml.parent.mkdir(parents=True, exist_ok=True)
            if xml.exists():
                xml.unlink()
            repo_root = port.repo(repo)
            argv = ["python", "-m", "pytest", *marks, str(folder.relative_to(repo_root)), "-p", "no:cacheprovider",
                    "-q", "-rA", f"--junitxml={ctx.target(xml)}"]
            result = run.command(argv, repo=repo, cwd=repo_root)
            counts, failures, skips = _junit(xml)
            for key in totals:
                totals[key] += counts.get(key, 0)
            run.metrics[f"{repo}_tests"] = counts
            run.messages += [f"{repo}: {f}" for f in failures]
            run.warnings += [f"{repo}: skipped {s}" for s in skips]
            if result.returncode == 5 or counts.get("tests", 0) == 0:
                run.messages.append(f"{repo}: no tests collected from {port.rel(folder)} with {' '.join(marks) or 'no marker filter'}")
            elif not result.ok and not failures:
                run.messages.append(f"{repo}: pytest {result.describe()}")
        run.metrics.update(totals)
        if run.messages:
            run.reason = f"{totals['failed']} of {totals['tests']} L0 tests failed; first: {run.messages[0]}"


def _junit(path: Path) -> tuple[dict[str, int], list[str], list[str]]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}, [], []
    counts = {"tests": 0, "passed": 0, "failed": 0, "skipped": 0}
    failures, skips = [], []
    for case in root.iter("testcase"):
        counts["tests"] += 1
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        if failed is not None:
            counts["failed"] += 1
            failures.append(f"{name}: {(failed.get('message') or '').splitlines()[0][:240] if failed.get('message') else 'failed'}")
        elif skipped is not None:
            counts["skipped"] += 1
            skips.append(f"{name}: {skipped.get('message') or ''}")
        else:
            counts["passed"] += 1
    return counts, failures, skips
