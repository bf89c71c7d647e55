"""`tao-scaffold update`: a blueprint change reaches the port and the user's own edits survive."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scaffolder.cli import main
from tests.model_factory import make_model_dir

NAME = "vit_imagenet100"
PORT = f"tao-pytorch/nvidia_tao_pytorch/cv/{NAME}"
REPOS = ("tao-core", "tao-pytorch", "tao-deploy")
PROJECT = Path(__file__).resolve().parent.parent


def git(repo: Path, *args: str) -> str:
    env_args = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    return subprocess.run(["git", *env_args, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def commit_all(workspace: Path, message: str) -> None:
    for repo in REPOS:
        git(workspace / repo, "add", "-A")
        git(workspace / repo, "commit", "-qm", message, "--allow-empty")


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A git clone of this project whose blueprints the test may change and commit."""
    clone = tmp_path / "template"
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(clone)], check=True)
    # Carry uncommitted blueprint work too, so the test exercises the blueprints as they are now.
    for rel in ("copier.yml",):
        (clone / rel).write_bytes((PROJECT / rel).read_bytes())
    subprocess.run(["cp", "-a", f"{PROJECT}/blueprints/.", f"{clone}/blueprints/"], check=True)
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "blueprints as in the working tree", "--allow-empty")
    return clone


def edit_blueprint(template: Path, rel: str, old: str, new: str) -> None:
    path = template / "blueprints/classification" / rel
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    git(template, "commit", "-qam", f"blueprint: {rel}")


def test_update_applies_blueprint_change_and_keeps_hand_edit(tao_workspace: Path, template: Path, tmp_path: Path):
    model = make_model_dir(tmp_path / "vit", "vit", full_size=True, weights=False)
    assert main(["-q", "generate", "--model", str(model), "--name", NAME,
                 "--workspace", str(tao_workspace), "--template", str(template)]) == 0
    commit_all(tao_workspace, "port")

    train = tao_workspace / PORT / "scripts/train.py"
    train.write_text(train.read_text().replace("PRECISIONS = {", "# hand edit: keep me\nPRECISIONS = {"))
    commit_all(tao_workspace, "hand edit")

    edit_blueprint(template, "tao-pytorch/nvidia_tao_pytorch/cv/{{ name }}/scripts/train.py.jinja",
                   '"""Train {{ name }}."""', '"""Train {{ name }} (blueprint v2)."""')

    assert main(["-q", "update", "--name", NAME, "--workspace", str(tao_workspace), "--template", str(template)]) == 0
    text = train.read_text()
    assert '"""Train vit_imagenet100 (blueprint v2)."""' in text  # the blueprint change arrived
    assert "# hand edit: keep me" in text  # the user's edit survived
    changed = git(tao_workspace / "tao-pytorch", "status", "--porcelain").split()
    assert f"nvidia_tao_pytorch/cv/{NAME}/scripts/train.py" in changed

    commit_all(tao_workspace, "updated")
    assert main(["-q", "update", "--name", NAME, "--workspace", str(tao_workspace), "--template", str(template)]) == 0
    for repo in REPOS:  # a second update is a no-op
        assert git(tao_workspace / repo, "status", "--porcelain") == ""


def test_update_reports_conflicts_inline(tao_workspace: Path, template: Path, tmp_path: Path, capsys):
    model = make_model_dir(tmp_path / "vit", "vit", full_size=True, weights=False)
    assert main(["-q", "generate", "--model", str(model), "--name", NAME,
                 "--workspace", str(tao_workspace), "--template", str(template)]) == 0
    commit_all(tao_workspace, "port")
    train = tao_workspace / PORT / "scripts/train.py"
    train.write_text(train.read_text().replace('"""Train vit_imagenet100."""', '"""Train it my way."""'))
    commit_all(tao_workspace, "hand edit of the docstring")
    edit_blueprint(template, "tao-pytorch/nvidia_tao_pytorch/cv/{{ name }}/scripts/train.py.jinja",
                   '"""Train {{ name }}."""', '"""Train {{ name }} (blueprint v2)."""')

    assert main(["-q", "update", "--name", NAME, "--workspace", str(tao_workspace), "--template", str(template)]) == 1
    text = train.read_text()
    assert "<<<<<<<" in text and "Train it my way" in text and "(blueprint v2)" in text
    assert "CONFLICT" in capsys.readouterr().out


def test_update_unknown_port_is_one_line_error(tao_workspace: Path, capsys):
    assert main(["update", "--name", "not_a_port", "--workspace", str(tao_workspace)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no tao-scaffold port named 'not_a_port'" in err[0]
