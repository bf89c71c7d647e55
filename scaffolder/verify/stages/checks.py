"""``consistency`` (cross-phase rules on the files), ``imports`` (every generated module imports) and
``l0`` (the generated L0 tests)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from scaffolder.verify.consistency_rules import ERROR, check_port
from scaffolder.verify.stages.base import Stage, StageFailed, StageRun

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


class ImportsStage(Stage):
    name = "imports"
    priority = 10
    title = "every generated module imports in its repo's environment"

    def run(self, ctx, run: StageRun) -> None:
        port = ctx.port
        groups = [("tao-pytorch", port.modules("tao-core") + port.modules("tao-pytorch"))]
        if port.deploy_dir is not None:
            groups.append(("tao-deploy", port.modules("tao-deploy")))
        totals: dict[str, int] = {}
        stubbed, inconclusive, stubbed_packages = [], [], []
        for repo, modules in groups:
            if not modules:
                continue
            args = list(modules)
            if repo == "tao-deploy" and not ctx.trt().available:
                # Without TensorRT this environment is not a tao-deploy one: stub TensorRT/pycuda and any other
                # third-party package TAO deploy needs but this environment lacks (never nvidia_tao_*).
                args = ["--stub", ",".join(TRT_PACKAGES), "--stub-missing", *args]
            result, data = run.probe("import_modules.py", args, repo=repo, tag=repo)
            stubbed_packages += data.get("stubbed_packages", [])
            if data.get("crashed"):
                raise StageFailed(f"import probe in {repo} failed: {data.get('error')}", [f"log: {ctx.rel(run.log_path)}"])
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
            extra = sorted(set(stubbed_packages) - set(TRT_PACKAGES))
            run.metrics["stubbed_packages"] = sorted(set(stubbed_packages))
            run.warnings.append(
                f"{len(stubbed)} deploy modules need TensorRT/pycuda ({ctx.trt().reason}); they were imported with "
                f"{', '.join(sorted(set(stubbed_packages)))} stubbed"
                + (f" ({', '.join(extra)}: TAO deploy dependencies missing from this environment)" if extra else "")
                + ", which checks their own code and TAO imports but not TensorRT: "
                + ", ".join(m.rsplit(".", 2)[-2] + "." + m.rsplit(".", 1)[-1] for m in stubbed)
            )
        run.warnings += [f"not verifiable with stubs: {m}" for m in inconclusive]
        if run.messages:
            run.reason = f"{len(run.messages)} module{'s' if len(run.messages) > 1 else ''} failed to import; first: {run.messages[0]}"


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
