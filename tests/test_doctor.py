"""``doctor`` on this machine and against good and broken workspaces (real git, docker, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaffolder.doctor import TAO_IMAGES, Check, format_checks, run_checks


@pytest.fixture(scope="module")
def machine_checks() -> list[Check]:
    return run_checks(None)


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_runs_on_this_machine(machine_checks: list[Check]):
    checks = by_name(machine_checks)
    expected = {"python", "git", "docker client", "docker daemon", "gpu", "tensorrt", "workspace"}
    assert expected | {f"image {i}" for i in TAO_IMAGES} == set(checks)
    assert len(checks) == len(machine_checks), "check names are unique"
    assert checks["python"].ok and checks["git"].ok
    for check in machine_checks:
        assert isinstance(check.ok, bool) and check.detail
        assert check.ok or check.fix, f"{check.name} failed without saying how to fix it"
        assert "check crashed" not in check.detail
    assert not checks["workspace"].ok and not checks["workspace"].required
    assert "--from-pypi" in checks["workspace"].fix
    if not checks["tensorrt"].ok:
        assert "tao-deploy container" in checks["tensorrt"].fix
    if not checks["docker daemon"].ok:
        assert "apt-get install docker.io" in checks["docker daemon"].fix


def test_format_checks_is_an_aligned_table(machine_checks: list[Check]):
    text = format_checks(machine_checks)
    print("\n" + text)
    rows = [line for line in text.splitlines() if line[:1] in "✓✗"]
    fixes = [line for line in text.splitlines() if line.lstrip().startswith("fix: ")]
    assert len(rows) == len(machine_checks)
    assert len(fixes) == sum(1 for c in machine_checks if not c.ok and c.fix)
    width = max(len(c.name) for c in machine_checks)
    for check, row in zip(machine_checks, rows):
        assert row.startswith(("✓ " if check.ok else "✗ ") + check.name)
        assert row[2 + width : 4 + width] == "  " and row[4 + width] != " "  # details start in one column
    for fix in fixes:
        assert fix.index("fix:") == 4 + width


def workspace_checks(root: Path) -> dict[str, Check]:
    checks = run_checks(root, machine=False)
    assert all(c.name.startswith("workspace") for c in checks)
    return {c.name: c for c in checks}


def test_full_run_with_workspace(tao_workspace_template: Path):
    checks = by_name(run_checks(tao_workspace_template))
    assert {"python", "docker daemon", "workspace", "workspace layout", "workspace clean"} <= set(checks)
    assert checks["workspace clean"].ok


def test_good_workspace(tao_workspace: Path):
    checks = workspace_checks(tao_workspace)
    assert set(checks) == {"workspace", "workspace writes", "workspace layout", "workspace versions",
                           "workspace submodules", "workspace imports", "workspace clean", "workspace writable"}
    assert "tao-pytorch 7.3.0 (PyPI wheel nvidia-tao-pytorch)" in checks["workspace versions"].detail
    assert all(c.ok for c in checks.values()), format_checks(list(checks.values()))
    assert "vendored" in checks["workspace layout"].detail and "7.3.0" in checks["workspace layout"].detail


def test_workspace_missing_repo(partial_tao_workspace):
    checks = workspace_checks(partial_tao_workspace(missing=("tao-pytorch",)))
    assert list(checks) == ["workspace"]
    assert not checks["workspace"].ok and checks["workspace"].required
    assert "tao-pytorch" in checks["workspace"].detail
    assert "--from-pypi 7.3.0" in checks["workspace"].fix


def test_workspace_dirty(partial_tao_workspace):
    root = partial_tao_workspace(copy=("tao-deploy",))
    (root / "tao-deploy" / "setup.py").write_text("# edited\n")
    checks = workspace_checks(root)
    assert checks["workspace"].ok and checks["workspace layout"].ok
    assert not checks["workspace clean"].ok
    assert "tao-deploy: 1 changed (setup.py)" in checks["workspace clean"].detail
    assert checks["workspace clean"].fix == "commit or stash, or pass --allow-dirty"


def test_workspace_that_does_not_exist(tmp_path: Path):
    checks = workspace_checks(tmp_path / "missing")
    assert not checks["workspace"].ok and "does not exist" in checks["workspace"].detail
