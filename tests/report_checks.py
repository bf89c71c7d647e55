"""What every full ``verify`` report must look like, whatever the task or runner (one place for the shape)."""

from __future__ import annotations

from pathlib import Path


def stage(report: dict, name: str) -> dict:
    return next(s for s in report["stages"] if s["name"] == name)


def assert_complete_report(report: dict, report_dir: Path, name: str) -> None:
    """A full run's report: every stage in order, CPU stages passed, TensorRT skipped with the reason (never
    passed, optional on --device cpu) and summed up once under "not exercised"; each stage has its time, log,
    exact command and rerun line; report.md has the table and the gates-not-exercised section."""
    from scaffolder.verify.stages import STAGE_NAMES, TRT_STAGES

    failed = {s["name"]: (s["reason"], s["messages"][:5]) for s in report["stages"] if s["status"] == "failed"}
    assert not failed, failed
    assert report["exit_code"] == 0 and report["status"] == "passed"
    assert [s["name"] for s in report["stages"]] == list(STAGE_NAMES)
    for entry in report["stages"]:
        if entry["name"] in TRT_STAGES:
            assert entry["status"] == "skipped" and "TensorRT" in entry["reason"] and entry["required"] is False, entry
        else:
            assert entry["status"] == "passed", entry
        assert isinstance(entry["seconds"], (int, float))
        assert entry["log"] and (report_dir / entry["log"]).is_file(), entry["name"]
        assert entry["command"] and entry["rerun"].endswith(f"--stages {entry['name']}")
    assert len(report["not_exercised"]) == 1 and "TensorRT" in report["not_exercised"][0]
    assert all(f"{trt} (" in report["not_exercised"][0] for trt in TRT_STAGES)
    assert f"{name} train -e " in stage(report, "train")["command"]
    assert f"{name} export -e " in stage(report, "export")["command"]
    assert stage(report, "consistency")["metrics"]["errors"] == 0
    env = report["environment"]
    assert env["tao_version"] == "7.3.0" and "torch" in env["packages"] and "TensorRT" in env["tensorrt"]
    md = (report_dir / "report.md").read_text()
    assert "| Stage | Status | Time | Key metrics | Notes |" in md
    assert "## Gates not exercised" in md and "gen_trt_engine" in md.split("## Gates not exercised")[1]
    for stage_name in STAGE_NAMES:
        assert f"| {stage_name} |" in md
