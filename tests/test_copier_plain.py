"""Plain Copier renders what `generate` writes: ``copier copy <tao-scaffold> <workspace> --data-file port.yml``.

`generate` adds two things on top of Copier: the libcst patch of tao-pytorch/setup.py and tao-deploy/setup.py
(Copier leaves them alone) and black (line length 120) over the Python it rendered. So the comparison is:

* the set of files is the same, minus the two setup.py files, which plain Copier does not write;
* every non-Python file (specs, answers file) is byte-identical as Copier wrote it;
* every Python file is byte-identical once ``black -l 120`` has run over Copier's output (before that, many
  differ only in formatting);
* from a template checkout with uncommitted changes the ``_commit:`` line of the answers file differs too:
  Copier renders such a checkout from a throwaway "draft" commit whose hash includes the commit time;
  `generate` pins that time so its own output is reproducible, the copier CLI does not. With a committed
  template the answers files are identical.

The template is a snapshot clone of this checkout with its working-tree blueprints (see test_generate.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaffolder.layout import answers_relpath
from tests.test_generate import EXAMPLE, NAME, call_main, make_template_snapshot, porcelain

ANSWERS = answers_relpath(NAME)
PATCHED = {"tao-pytorch/setup.py", "tao-deploy/setup.py"}


def _tool(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("dirty", [False, True], ids=["committed-template", "dirty-template"])
def test_plain_copier_renders_what_generate_writes(dirty: bool, tao_workspace: Path, tmp_path: Path):
    template = make_template_snapshot(tmp_path / "tao-scaffold", dirty=dirty)
    plan = tmp_path / "port.yml"
    rc, out, err = call_main("-q", "inspect", str(EXAMPLE), "--name", NAME, "--out", str(plan))
    assert rc == 0, err

    # generate from the reviewed plan
    rc, out, err = call_main("-q", "generate", "--plan", str(plan), "--workspace", str(tao_workspace),
                             "--template", str(template))
    assert rc == 0, err
    generated = {}
    for repo, status in porcelain(tao_workspace).items():
        for line in status.splitlines():
            rel = f"{repo}/{line[3:]}"
            generated[rel] = (tao_workspace / rel).read_bytes()
    assert PATCHED <= set(generated)

    # plain Copier into an empty folder, as a user without tao-scaffold installed would
    dest = tmp_path / "copier-out"
    proc = subprocess.run([_tool("copier"), "copy", "--quiet", "--defaults", "--data-file", str(plan),
                           str(template), str(dest)], capture_output=True, text=True,
                          env=dict(os.environ, NO_COLOR="1"))
    assert proc.returncode == 0, proc.stderr
    raw = _files(dest)
    assert set(raw) == set(generated) - PATCHED, "Copier and generate wrote different files"

    # non-Python files: identical as rendered (the answers file aside, see below)
    for rel in sorted(raw):
        if not rel.endswith(".py") and rel != ANSWERS:
            assert raw[rel] == generated[rel], rel

    # Python: identical after black -l 120 (explicit config: no pyproject.toml is picked up from elsewhere)
    config = tmp_path / "black.toml"
    config.write_text("[tool.black]\nline-length = 120\n")
    proc = subprocess.run([_tool("black"), "--quiet", "--config", str(config), str(dest)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    formatted = _files(dest)
    reformatted = sorted(rel for rel in raw if raw[rel] != formatted[rel])
    assert reformatted, "expected black to have work to do on Copier's raw output"
    assert all(rel.endswith(".py") for rel in reformatted)
    mismatched = [rel for rel in formatted if rel.endswith(".py") and formatted[rel] != generated[rel]]
    assert not mismatched, f"differ even after black: {mismatched}"

    # the answers file: identical, except `_commit` when the template checkout is dirty
    ours = yaml.safe_load(generated[ANSWERS])
    theirs = yaml.safe_load(raw[ANSWERS])
    assert {k: v for k, v in ours.items() if k != "_commit"} == {k: v for k, v in theirs.items() if k != "_commit"}
    if dirty:
        differing = [(a, b) for a, b in zip(raw[ANSWERS].splitlines(), generated[ANSWERS].splitlines()) if a != b]
        assert len(differing) == 1 and all(line.startswith(b"_commit: ") for line in differing[0]), differing
    else:
        assert raw[ANSWERS] == generated[ANSWERS]
        assert ours["_commit"] == subprocess.run(["git", "describe", "--tags", "--always"], cwd=template,
                                                 capture_output=True, text=True, check=True).stdout.strip()

    # and the setup.py patch is the one thing generate adds
    for rel in PATCHED:
        assert not (dest / rel).exists()
