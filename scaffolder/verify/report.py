"""``report.json`` (machine-readable) and ``report.md`` (a table a reviewer reads in 10 seconds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scaffolder.verify.model import FAILED, PASSED, SKIPPED, StageResult
from scaffolder.verify.progress import summary_metrics

SCHEMA_VERSION = 1


def verdict(results: list[StageResult]) -> tuple[bool, list[str]]:
    """(passed, why not): passed only if every stage that ran passed and no required stage was skipped."""
    why = [f"{r.name} failed: {r.reason}" for r in results if r.status == FAILED]
    why += [f"{r.name} (required) skipped: {r.reason}" for r in results if r.status == SKIPPED and r.required]
    return not why, why


def root_reason(reason: str) -> str:
    """``needs a (skipped: needs b (skipped: X))`` -> ``X``: why a chain of stages did not run."""
    while reason.startswith("needs ") and " (skipped: " in reason and reason.endswith(")"):
        reason = reason.split(" (skipped: ", 1)[1][:-1]
    return reason


def not_exercised(results: list[StageResult], titles: dict[str, str] | None = None) -> list[str]:
    """Gates that did not run (skipped for a reason other than ``--stages``), grouped by root cause."""
    groups: dict[str, list[str]] = {}
    for r in results:
        if r.status == SKIPPED and "not selected" not in r.reason:
            groups.setdefault(root_reason(r.reason), []).append(r.name)
    titles = titles or {}
    lines = []
    for reason, names in groups.items():
        gates = "; ".join(f"{n} ({titles[n]})" if n in titles else n for n in names)
        lines.append(f"{gates} -- {reason}")
    return lines


def build(*, port, options, results: list[StageResult], environment: dict[str, Any], seconds: float,
          report_dir: Path, work_dir: Path, started: str, titles: dict[str, str] | None = None,
          interrupted: bool = False) -> dict[str, Any]:
    passed, why = verdict(results)
    if interrupted:
        passed, why = False, ["interrupted (Ctrl-C)", *why]
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "tao-scaffold verify",
        "port": port.name,
        "task": port.task,
        "workspace": str(port.root),
        "runner": options.runner,
        "device": options.device,
        "data": str(options.data) if options.data else "synthetic",
        "started": started,
        "seconds": round(seconds, 1),
        "status": PASSED if passed else FAILED,
        "exit_code": 0 if passed else 1,
        "why_failed": why,
        "not_exercised": not_exercised(results, titles),
        "warnings": sum(len(r.warnings) for r in results),
        "command": " ".join(options.argv_for_rerun),
        "report_dir": str(report_dir),
        "work_dir": str(work_dir),
        "environment": environment,
        "stages": [r.to_dict() for r in results],
    }


def write(report: dict[str, Any], report_dir: Path) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "report.json"
    md_path = report_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    stages = [StageResult(**s) for s in report["stages"]]
    icon = {PASSED: "✅ passed", FAILED: "❌ failed", SKIPPED: "⏭ skipped"}
    env = report.get("environment", {})
    lines = [
        f"# tao-scaffold verify: `{report['port']}` -- {'PASSED' if report['status'] == PASSED else 'FAILED'}",
        "",
        f"{report['task']} port in `{report['workspace']}` · runner `{report['runner']}` · device `{report['device']}` · "
        f"data: {report['data']} · {report['seconds']:.0f}s · {report['started']}",
        "",
        "| Stage | Status | Time | Key metrics | Notes |",
        "|---|---|---:|---|---|",
    ]
    for r in stages:
        status = icon[r.status] + ("" if r.required or r.status != SKIPPED else " (optional)")
        timing = f"{r.seconds:.1f}s" if r.status != SKIPPED else ""
        notes = r.reason if r.status != PASSED else (f"{len(r.warnings)} warning(s)" if r.warnings else "")
        if r.status == SKIPPED and r.reason.startswith("needs ") and " (skipped: " in r.reason:
            notes = r.reason.split(" (skipped: ", 1)[0] + " (skipped)"  # the root cause is in its own row
        lines.append(f"| {r.name} | {status} | {timing} | {_cell(summary_metrics(r))} | {_cell(notes)[:300]} |")
    gaps = report.get("not_exercised") or []
    lines += ["", "## Gates not exercised", ""]
    lines += [f"- {_cell(g)}" for g in gaps] if gaps else ["- none: every gate ran"]
    failing = [r for r in stages if r.status == FAILED]
    if failing:
        lines += ["", "## Failures", ""]
        for r in failing:
            lines.append(f"### {r.name}: {r.reason}")
            lines.append("")
            lines += [f"- {_cell(m)}" for m in r.messages[:40]]
            lines += [f"- log: `{r.log}`", f"- rerun: `{r.rerun}`", ""]
    warned = [r for r in stages if r.warnings]
    if warned:
        lines += ["", "## Warnings", ""]
        for r in warned:
            lines += [f"- **{r.name}**: {_cell(w)}" for w in r.warnings[:20]]
    lines += ["", "## Environment", ""]
    for key, value in env.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        lines.append(f"- {key}: {_cell(value)}")
    lines += ["", "## Rerun", "", f"- everything: `{report['command']}`"]
    for r in stages:
        if r.status != SKIPPED or "not selected" not in r.reason:
            lines.append(f"- {r.name}: `{r.command}`")
    lines.append("")
    return "\n".join(lines)
