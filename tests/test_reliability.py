"""Reliability and security (issue 11): journaled writes, the workspace lock, signals, escaping, bounds.

Expensive set-ups are shared per module: ``vit_plan`` (the offline ViT example planned once, written as a
port.yml) and ``baseline`` (one uninterrupted ``generate --plan`` of it, hashed). Kill tests run the real
CLI in a child process whose ``os.replace`` sends the signal at the N-th move of the final write (the
moves out of the staging tree), then the next run must roll back and complete to exactly ``baseline``.

The property test renders the blueprint tree with Copier's own Jinja environment (the one ``copier.run_copy``
builds for this template; one test pins that its output equals a real Copier render) so that a few hundred
label sets and plan fields fit in about a minute.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.test_generate import (
    EXAMPLE,
    PROJECT,
    STAGING_PREFIX,
    assert_unchanged,
    call_main,
    copy_workspace,
    error_line,
    load_default_config,
    make_template_snapshot,
    snapshot,
)

NAME = "vit_rel"
SECRET = "hf_reliability_secret_7f3a"  # HF_TOKEN while the tests run: must never reach a generated file


@pytest.fixture(scope="module")
def vit_plan(tmp_path_factory) -> Path:
    """The ViT example's plan (weight mapping included), as `inspect --out` writes it."""
    from scaffolder.hf_inspect import inspect_model
    from scaffolder.planner import plan_port

    info = inspect_model(str(EXAMPLE), offline=True, include_weights_schema=False)
    path = tmp_path_factory.mktemp("plan") / "port.yml"
    plan_port(info, NAME).write(path)
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A clone of this checkout's blueprints: every generate here renders the same `_commit`."""
    return make_template_snapshot(tmp_path_factory.mktemp("template") / "tao-scaffold", dirty=False)


@pytest.fixture(scope="module")
def baseline(tao_workspace_template: Path, vit_plan: Path, template: Path, tmp_path_factory) -> dict[str, object]:
    """The workspace after one uninterrupted `generate --plan`, hashed (every file, modes, git status)."""
    ws = copy_workspace(tao_workspace_template, tmp_path_factory.mktemp("baseline") / "ws")
    rc, out, err = call_main("-q", "generate", "--plan", str(vit_plan), "--workspace", str(ws), "--template", str(template))
    assert rc == 0, err
    return snapshot(ws)


# -- journaled commit: signals and kills in the final write ---------------------------------------------

KILL_AT_NTH_MOVE = r"""
import os, signal, sys
nth, signame = int(sys.argv[1]), sys.argv[2]
real_replace, seen = os.replace, [0]
def replace(src, dst, *args, **kwargs):
    if "/.tao-scaffold-staging-" in str(src) and "/tree/" in str(src):  # a move of the final write
        seen[0] += 1
        if seen[0] == nth:
            os.kill(os.getpid(), getattr(signal, signame))
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
from scaffolder.cli import main
sys.exit(main(sys.argv[3:]))
"""


def run_killed(nth: int, signame: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(PROJECT))
    return subprocess.run([sys.executable, "-c", KILL_AT_NTH_MOVE, str(nth), signame, *args], capture_output=True,
                          text=True, env=env, cwd=PROJECT, timeout=600)


@pytest.mark.parametrize("nth", ["first", "last"])  # the SIGTERM test below interrupts a middle move
def test_sigkill_in_the_final_write_is_rolled_back_by_the_next_run(nth: str, tao_workspace: Path, vit_plan: Path,
                                                                    template: Path, baseline: dict[str, object]):
    """SIGKILL at the 1st and at the last move (the answers file: every other file is in place then)."""
    from scaffolder.doctor import run_checks

    moves = 42  # files the ViT port writes (40 new + 2 setup.py); checked against the kill below
    at = {"first": 1, "last": moves}[nth]
    proc = run_killed(at, "SIGKILL", "-q", "generate", "--plan", str(vit_plan), "--workspace", str(tao_workspace),
                      "--template", str(template))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    journals = list(tao_workspace.glob(f"{STAGING_PREFIX}*/journal.json"))
    assert len(journals) == 1
    assert len(json.loads(journals[0].read_text())["entries"]) == moves
    if nth == "last":  # everything but the answers file moved in: a half-written port
        assert (tao_workspace / f"tao-pytorch/nvidia_tao_pytorch/cv/{NAME}/model/build.py").is_file()
    # doctor reports it (and leaves it alone)
    check = next(c for c in run_checks(tao_workspace, machine=False) if c.name == "workspace writes")
    assert not check.ok and "interrupted write" in check.detail and "rolls them back" in check.fix
    assert journals[0].is_file()

    rc, out, err = call_main("-q", "generate", "--plan", str(vit_plan), "--workspace", str(tao_workspace),
                             "--template", str(template))
    assert rc == 0, err
    assert f"tao-scaffold: recovered: rolled back an interrupted write of {moves} files" in err
    assert snapshot(tao_workspace) == baseline  # identical to a run that was never interrupted
    assert not list(tao_workspace.glob(f"{STAGING_PREFIX}*"))


def test_sigterm_in_the_final_write_rolls_back_at_once(tao_workspace: Path, vit_plan: Path):
    before = snapshot(tao_workspace)
    proc = run_killed(21, "SIGTERM", "-q", "generate", "--plan", str(vit_plan), "--workspace", str(tao_workspace))
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "tao-scaffold: terminated (SIGTERM)"
    assert_unchanged(tao_workspace, before)  # no staging folder, no journal, every byte as before


def test_sighup_is_handled_like_sigint():
    from scaffolder.signals import Terminated, terminate_like_sigint

    with pytest.raises(Terminated) as caught, terminate_like_sigint():
        os.kill(os.getpid(), signal.SIGHUP)  # the handler runs before the next bytecode
    assert caught.value.signum == signal.SIGHUP and isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, None)  # restored


def test_stale_staging_folders_are_removed_by_the_next_writer(tmp_path: Path):
    from scaffolder.lock import workspace_lock

    stale = tmp_path / f"{STAGING_PREFIX}dead"
    (stale / "tree").mkdir(parents=True)
    with workspace_lock(tmp_path) as notes:
        assert notes == []  # nothing was half-written: removed silently
    assert not stale.exists()


def test_commit_moves_the_answers_file_last(tmp_path: Path, monkeypatch):
    """An interrupted `update` must never record the new blueprint version before its files are in place."""
    from scaffolder.layout import answers_relpath
    from scaffolder.staging import Staging

    staging = Staging(tmp_path)
    rels = ["tao-core/a.py", answers_relpath("x"), "tao-pytorch/setup.py", "tao-deploy/z.py"]
    for rel in rels:
        (staging.tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging.tree / rel).write_text(rel)
    moves, real = [], os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (moves.append(str(Path(dst).relative_to(tmp_path))),
                                                         real(src, dst)))
    with staging:
        staging.commit(staging.changes())
    order = [rel for rel in moves if not rel.startswith(STAGING_PREFIX)]  # the journal is replaced in too
    assert order[-1] == answers_relpath("x") and sorted(order) == sorted(rels)
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


# -- workspace lock ----------------------------------------------------------------------------------------


def test_two_concurrent_generates_lose_nothing(tao_workspace: Path, vit_plan: Path, tmp_path: Path):
    from scaffolder.plan import PortPlan

    plans = {}
    for name in ("vit_rel_a", "vit_rel_b"):
        plans[name] = tmp_path / f"{name}.yml"
        PortPlan.from_answers({**PortPlan.read(vit_plan).answers(), "name": name, "class_name": ""}).write(plans[name])
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(PROJECT))
    # --allow-dirty: without it the second (serialised by the lock) rightly refuses the first's uncommitted port
    procs = [subprocess.Popen([sys.executable, "-m", "scaffolder.cli", "generate", "--plan", str(path),
                               "--workspace", str(tao_workspace), "--allow-dirty"], cwd=PROJECT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for path in plans.values()]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert any("lock: another tao-scaffold process is writing" in err for _, _, err in results)
    for repo, package in (("tao-pytorch", "nvidia_tao_pytorch"), ("tao-deploy", "nvidia_tao_deploy")):
        setup = (tao_workspace / repo / "setup.py").read_text()
        for name in plans:
            assert f"{name}={package}.cv.{name}.entrypoint.{name}:main" in setup
    for name in plans:
        assert (tao_workspace / f"tao-pytorch/nvidia_tao_pytorch/cv/{name}/.tao-scaffold-answers.yml").is_file()
    assert not list(tao_workspace.glob(f"{STAGING_PREFIX}*"))


def test_a_second_writer_refuses_with_one_line_when_the_wait_runs_out(clean_workspace_copy: Path, vit_plan: Path,
                                                                      monkeypatch):
    from scaffolder.lock import WAIT_ENV, workspace_lock

    before = snapshot(clean_workspace_copy)
    monkeypatch.setenv(WAIT_ENV, "0.3")
    with workspace_lock(clean_workspace_copy):
        rc, out, err = call_main("-q", "generate", "--plan", str(vit_plan), "--workspace", str(clean_workspace_copy))
    assert rc == 2
    assert error_line(err) == (f"tao-scaffold: error: another tao-scaffold process is writing {clean_workspace_copy} "
                               f"(still busy after 0.3s) -- wait for it to finish and run again (or raise {WAIT_ENV})")
    assert_unchanged(clean_workspace_copy, before)


@pytest.fixture(scope="module")
def clean_workspace_copy(tao_workspace_template: Path, tmp_path_factory) -> Path:
    return copy_workspace(tao_workspace_template, tmp_path_factory.mktemp("clean-rel") / "ws")


# -- symlinks and collisions ---------------------------------------------------------------------------------


def _staged(workspace: Path, rel: str):
    from scaffolder.staging import Staging

    staging = Staging(workspace)
    (staging.tree / rel).parent.mkdir(parents=True)
    (staging.tree / rel).write_text("generated\n")
    return staging


@pytest.mark.parametrize("link,target_kind", [("tao-pytorch/tests/cv_unit_test/p", "outside"),
                                              ("tao-pytorch/tests/cv_unit_test/p/test_p.py", "file")])
def test_no_write_through_a_symlink(tmp_path: Path, link: str, target_kind: str):
    from scaffolder.errors import WorkspaceError

    ws, outside = tmp_path / "ws", tmp_path / "outside"
    for repo in ("tao-core", "tao-pytorch", "tao-deploy"):
        (ws / repo).mkdir(parents=True)
    outside.mkdir()
    (ws / link).parent.mkdir(parents=True, exist_ok=True)
    (ws / link).symlink_to(outside if target_kind == "outside" else outside / "x.py")
    with _staged(ws, "tao-pytorch/tests/cv_unit_test/p/test_p.py") as staging:
        with pytest.raises(WorkspaceError, match=r"refusing to write tao-pytorch/tests/cv_unit_test/p/test_p.py: .* is "
                                                 r"a symlink to .*outside"):
            staging.changes()
    assert list(outside.iterdir()) == []


def test_symlinked_repositories_are_fine(tmp_path: Path):
    """A workspace of links to existing clones is a normal layout: only links inside a repo are checked."""
    ws, clones = tmp_path / "ws", tmp_path / "clones"
    for repo in ("tao-core", "tao-pytorch", "tao-deploy"):
        (clones / repo).mkdir(parents=True)
        ws.mkdir(exist_ok=True)
        (ws / repo).symlink_to(clones / repo)
    with _staged(ws, "tao-deploy/tests/p/test_p.py") as staging:
        assert [(c.relpath, c.status) for c in staging.changes()] == [("tao-deploy/tests/p/test_p.py", "new")]


def test_a_new_port_never_overwrites_a_file_it_did_not_write(tmp_path: Path):
    """Collisions in every folder a port writes, tests/ included (the name check only knows packages)."""
    from scaffolder.errors import NameError_
    from scaffolder.generate import check_no_collisions
    from scaffolder.plan import PortPlan
    from scaffolder.staging import FileChange

    plan = PortPlan(name="p", task="classification", backbone="vit_base_patch16", num_features=768)

    class FakeWorkspace:
        root = tmp_path

    changes = [FileChange("tao-pytorch/setup.py", "changed"), FileChange("tao-deploy/tests/p/test_p.py", "changed"),
               FileChange("tao-core/nvidia_tao_core/config/p/__init__.py", "new")]
    with pytest.raises(NameError_, match=r"port 'p' would overwrite files tao-scaffold did not write: "
                                         r"tao-deploy/tests/p/test_p.py -- choose another --name"):
        check_no_collisions(plan, FakeWorkspace, changes, {"tao-pytorch/setup.py"})
    check_no_collisions(plan, FakeWorkspace, changes[:1] + changes[2:], {"tao-pytorch/setup.py"})  # edits are fine


# -- one-line errors -----------------------------------------------------------------------------------------


def test_unexpected_exceptions_become_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import scaffolder.doctor
    from scaffolder.cli import main

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom\nsecond line \x1b[2J")

    monkeypatch.setattr(scaffolder.doctor, "run_checks", broken)
    assert main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert err == ("tao-scaffold: error: unexpected RuntimeError: boom second line \\x1b[2J -- run again with "
                   "`tao-scaffold --debug doctor ...` for the traceback, and report it\n")
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "doctor"])


def test_error_lines_escape_terminal_controls_and_mask_url_credentials():
    from scaffolder.errors import printable

    assert printable("model \x1b[31mred\r \u202eevil") == "model \\x1b[31mred\\r \\u202eevil"
    assert printable("cannot reach https://user:hf_tok@hub.example/api") == "cannot reach https://***@hub.example/api"


def _plan_data(vit_plan: Path, **changes) -> dict:
    data = yaml.load(vit_plan.read_text(), Loader=yaml.CSafeLoader)
    data.update(changes)
    return data


def _write_plan(path: Path, data: dict) -> Path:
    path.write_text(yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=True))
    return path


BAD_FIELDS = [
    ({"tool_version": "0.1.0\nimport os; os.system('id')"}, "port plan field tool_version is"),
    ({"mapping_notes": ["fine\rMAPPING = __import__('os')"]}, "port plan field mapping_notes item"),
    ({"weight_mapping": "MAPPING = [__import__('os').system('id')]"}, "port plan field weight_mapping is Python source"),
    ({"weight_mapping": [["a", ["b"], [["exec", "x"]]]]}, "has an op ['exec', 'x'] that is not [op, arg]"),
    ({"weight_mapping": [["a); import os", ["b"], [["copy", None]]]]}, "TAO key that is not a state-dict key"),
    ({"name": 5}, "port name 5 is not a string"),
    ({"name": "a" * 300}, "is 300 characters long (at most 64)"),
    ({"name": "pytest"}, "would shadow the command 'pytest'"),
    ({"name": "json"}, "would shadow the Python standard-library module 'json'"),
    ({"num_classes": 0}, "port plan field num_classes is 0, not an integer from 1 to 50000"),
    ({"num_classes": -1}, "num_classes is -1"),
    ({"num_classes": 10**7}, "num_classes is 10000000"),
    ({"class_names": [1, 2]}, "class_names has 2 entries, not num_classes=1000"),
    ({"num_classes": 2, "class_names": [1, 2]}, "class_names item 1 is not a label"),
    ({"mean": [float("nan")] * 3}, "port plan field mean is [nan, nan, nan], not 3 finite numbers"),
    ({"std": [0.5, 0.0, 0.5]}, "every value must be > 0"),
    ({"mean": [0.5] * 5}, "not 3 finite numbers (one per input channel, in_channels=3)"),
    ({"std": [float("inf")] * 3}, "port plan field std is [inf, inf, inf]"),
    ({"img_size": -224}, "img_size is -224, not an integer from 8 to 8192"),
    ({"img_size": 10**9}, "img_size is 1000000000"),
    ({"backbone": "vit); import os"}, "backbone is 'vit); import os', not a Python identifier"),
    ({"model": "m\x85x"}, "port plan field model contains the non-printing character U+0085"),
    ({"opset_version": "17"}, "opset_version is '17'"),
]


@pytest.mark.parametrize("changes,message", BAD_FIELDS, ids=[next(iter(c)) + str(i) for i, (c, _) in enumerate(BAD_FIELDS)])
def test_plan_fields_are_validated_on_read(vit_plan: Path, tmp_path: Path, changes: dict, message: str):
    path = _write_plan(tmp_path / "port.yml", _plan_data(vit_plan, **changes))
    rc, out, err = call_main("-q", "generate", "--plan", str(path), "--workspace", str(tmp_path / "no-ws"))
    assert rc == 2 and out == ""
    line = error_line(err)
    assert message in line, line
    assert " -- " in line


def test_yaml_alias_bomb_and_undecodable_plans_are_refused_fast(tmp_path: Path):
    bomb = tmp_path / "bomb.yml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    bomb.write_text("\n".join(lines) + "\nname: x\n")
    rc, _, err = call_main("-q", "generate", "--plan", str(bomb), "--workspace", str(tmp_path))
    assert rc == 2 and "YAML alias *a0 (aliases are not allowed)" in error_line(err)
    latin1 = tmp_path / "latin1.yml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    rc, _, err = call_main("-q", "generate", "--plan", str(latin1), "--workspace", str(tmp_path))
    assert rc == 2 and "cannot read port plan" in error_line(err) and "utf-8" in error_line(err)


def test_num_classes_flag_is_bounded():
    rc, _, err = call_main("inspect", str(EXAMPLE), "--num-classes", "999999999999999999999")
    assert rc == 2 and "at most 50000 classes, not 999999999999999999999" in error_line(err)


@pytest.mark.parametrize("config_change,message", [
    ({"id2label": ["cat", "dog"]}, "config.json id2label is a list, not a mapping"),
    ({"id2label": None, "num_labels": 10**18}, "config.json has 1000000000000000000 labels (at most 50000)"),
])
def test_hostile_config_json_gives_one_line(tmp_path: Path, config_change: dict, message: str):
    model = tmp_path / "model"
    model.mkdir()
    config = json.loads((EXAMPLE / "config.json").read_text())
    config.pop("label2id", None)
    config.update({k: v for k, v in config_change.items() if v is not None})
    if config_change.get("id2label", 0) is None:
        config.pop("id2label")
    (model / "config.json").write_text(json.dumps(config))
    rc, _, err = call_main("-q", "inspect", str(model), "--no-weights")
    assert rc == 2 and message in error_line(err)


def test_deeply_nested_config_json_gives_one_line(tmp_path: Path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "vit", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    rc, _, err = call_main("-q", "inspect", str(model), "--no-weights")
    assert rc == 2 and "is nested too deeply to be a HF config" in error_line(err)


def test_a_setup_py_that_is_not_utf8_is_one_line_and_leaves_the_workspace(tao_workspace: Path, vit_plan: Path):
    from tests.test_generate import commit_all

    (tao_workspace / "tao-deploy/setup.py").write_bytes(b"# caf\xe9\nfrom setuptools import setup\nsetup()\n")
    commit_all(tao_workspace, "latin-1 setup.py")
    before = snapshot(tao_workspace)
    rc, _, err = call_main("-q", "generate", "--plan", str(vit_plan), "--workspace", str(tao_workspace))
    assert rc == 2
    assert error_line(err).startswith(f"tao-scaffold: error: cannot read {tao_workspace.resolve()}/tao-deploy/setup.py: "
                                      "'utf-8' codec can't decode")
    assert f"-- restore it: git -C {tao_workspace.resolve() / 'tao-deploy'} checkout -- setup.py" in error_line(err)
    assert_unchanged(tao_workspace, before)


def test_inspect_out_in_a_missing_folder_is_one_line(tmp_path: Path):
    rc, _, err = call_main("-q", "inspect", str(EXAMPLE), "--no-weights", "--out", str(tmp_path / "no/such/port.yml"))
    assert rc == 2
    assert error_line(err) == (f"tao-scaffold: error: cannot write the plan to {tmp_path / 'no/such/port.yml'}: "
                               f"{tmp_path / 'no/such'} is not a writable folder -- pass an --out path in a "
                               "writable folder")  # refused before the model is read


# -- escaping: OmegaConf, Python, YAML -------------------------------------------------------------------------

NASTY = ["${oc.env:HF_TOKEN}", "${results_dir}", "\\${oc.env:HF_TOKEN}", "a\\\\${b}", "${oc.decode:'1'}",
         "${", "x\x85y", "rtl \u202e txt", "sep\u2028line", "bell\x07", "quote \"' {{ 7*7 }} {% x %}", "猫 🐱"]


def test_labels_survive_tao_config_resolution_and_no_secret_leaks(tao_workspace: Path, vit_plan: Path,
                                                                  tmp_path: Path, monkeypatch):
    """The port's own structured config (ExperimentConfig) merged with its experiment spec and resolved by
    OmegaConf, as TAO's hydra runner does, returns the labels verbatim; HF_TOKEN appears nowhere."""
    monkeypatch.setenv("HF_TOKEN", SECRET)
    path = tmp_path / "nasty.yml"
    labels = NASTY + [f"class_{i}" for i in range(3)]
    _write_plan(path, _plan_data(vit_plan, name="nasty_rel", class_name="", num_classes=len(labels),
                                 class_names=labels))
    rc, out, err = call_main("-q", "generate", "--plan", str(path), "--workspace", str(tao_workspace))
    assert rc == 0, err
    code = (
        "import json, sys, yaml\n"
        "from omegaconf import OmegaConf\n"
        "from nvidia_tao_pytorch.config.nasty_rel.default_config import ExperimentConfig\n"
        "spec = yaml.safe_load(open(sys.argv[1]))\n"
        "cfg = OmegaConf.merge(OmegaConf.structured(ExperimentConfig), spec)\n"
        "json.dump(OmegaConf.to_container(cfg, resolve=True), sys.stdout)\n"
    )
    spec = tao_workspace / "tao-pytorch/nvidia_tao_pytorch/cv/nasty_rel/experiment_specs/experiment_spec.yaml"
    env = dict(os.environ, PYTHONPATH=f"{tao_workspace / 'tao-core'}:{tao_workspace / 'tao-pytorch'}",
               HF_TOKEN=SECRET, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", code, str(spec)], capture_output=True, text=True, env=env, cwd="/",
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = json.loads(proc.stdout)
    assert resolved["dataset"]["class_names"] == labels
    assert SECRET not in proc.stdout
    for package in ("nvidia_tao_core", "nvidia_tao_deploy"):  # the other two config copies, as dataclasses
        assert _resolved(load_default_config(tao_workspace, package, "nasty_rel")["class_names"]) == labels
    for line in out.splitlines():
        rel = line.split()[-1] if line.startswith("  ") else ""
        if rel and (tao_workspace / rel).is_file():
            text = (tao_workspace / rel).read_text(encoding="utf-8")
            assert SECRET not in text and "\u202e" not in text and "\x85" not in text, rel
    answers = yaml.safe_load((tao_workspace / "tao-pytorch/nvidia_tao_pytorch/cv/nasty_rel/.tao-scaffold-answers.yml")
                             .read_text(encoding="utf-8"))
    assert answers["class_names"] == labels  # update reads them back unchanged


# -- property: any labels and free-text plan fields stay data ----------------------------------------------------

class BlueprintRenderer:
    """The classification blueprint rendered with Copier's Jinja environment for this template, in memory."""

    def __init__(self, template: Path = PROJECT):
        import copier

        worker = copier.Worker(src_path=str(template), dst_path=str(template / ".unused"), defaults=True,
                               unsafe=False, quiet=True)
        self.env = worker.jinja_env
        self.root = template
        self.sources = sorted(p.relative_to(template).as_posix()
                              for p in (template / "blueprints/classification").rglob("*.jinja"))

    def render(self, plan, sources: list[str] | None = None) -> dict[str, str]:
        """{workspace-relative path: text} of ``sources`` (blueprint files; default all)."""
        from scaffolder.layout import answers_relpath

        answers = plan.answers()
        context = {**answers, "_copier_answers": {**answers, "_commit": "0", "_src_path": str(self.root)},
                   "_copier_conf": {"answers_file": answers_relpath(plan.name)}}
        out = {}
        for source in self.sources if sources is None else sources:
            rel = self.env.from_string(source.removeprefix("blueprints/classification/")).render(context)
            if not rel.endswith(".jinja") or any(part in ("", ".jinja") for part in rel.split("/")):
                continue
            out[rel.removesuffix(".jinja")] = self.env.get_template(source).render(context)
        return out

    def sources_using(self, plan, probe) -> list[str]:
        """The blueprint files whose output changes between two plans (the ones a property must look at)."""
        return [s for s in self.sources if self.render(plan, [s]) != self.render(probe, [s])]


@pytest.fixture(scope="module")
def renderer() -> BlueprintRenderer:
    return BlueprintRenderer()


@pytest.fixture(scope="module")
def small_plan(vit_plan: Path):
    """The ViT plan cut to 3 classes and 6 mapping rows: the property test renders it hundreds of times."""
    from scaffolder.plan import PortPlan

    plan = PortPlan.read(vit_plan)
    return PortPlan.from_answers({**plan.answers(), "name": "prop_port", "class_name": "", "num_classes": 3,
                                  "class_names": ["a", "b", "c"], "weight_mapping": plan.weight_mapping[:6]})


def test_the_property_renderer_matches_copier(renderer: BlueprintRenderer, small_plan, tmp_path: Path):
    from scaffolder.render import render

    render(small_plan, tmp_path / "tree")
    ours = renderer.render(small_plan)
    theirs = {p.relative_to(tmp_path / "tree").as_posix(): p.read_text(encoding="utf-8")
              for p in (tmp_path / "tree").rglob("*") if p.is_file()}
    assert set(ours) == set(theirs)
    for rel, text in theirs.items():
        if not rel.endswith(".tao-scaffold-answers.yml"):  # _commit/_src_path differ
            assert ours[rel] == text, rel


def _shape(tree: ast.AST) -> str:
    """The module's AST with every constant blanked and constant lists cut to one item: what the code *does*,
    whatever the labels say (and however many there are). Injected code would add names, calls, statements."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            node.value = "<c>"
        elif isinstance(node, (ast.List, ast.Tuple)) and node.elts and all(isinstance(e, ast.Constant) for e in node.elts):
            node.elts = node.elts[:1]
    return ast.dump(tree)


def _resolved(value):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.create({"v": value}), resolve=True)["v"]


FRAGMENTS = ["${", "}", "${oc.env:HF_TOKEN}", "${results_dir}", "\\", "\\\\", "$", "{", "'", '"', "\n", "\r", "\t",
             "\x00", "\x85", "\u2028", "\u202e", "\ufeff", "{{", "}}", "{%", "%}", "{#", "#", ":", "- ", "&a", "*a",
             "!!python/object", "---", "...", "@", "`", "é", "猫", "🐱", " ", "import os", ");"]


@functools.lru_cache(maxsize=None)  # specs vary with the class count only: a handful of distinct texts
def _spec_resolves_unchanged(text: str) -> bool:
    spec = yaml.load(text, Loader=yaml.CSafeLoader)
    return _resolved(spec) == spec  # nothing in a spec is an interpolation


FREE_TEXT = ("model", "strategy_reason", "mapping_notes", "export_notes", "architectures")


def _text(min_size: int = 0, printable: bool = False):
    """Strings built from hostile fragments and random characters (``printable``: one printable line)."""
    from hypothesis import strategies as st

    from scaffolder.plan import one_line_problem

    if printable:
        chars = st.characters(blacklist_categories=("C", "Z")) | st.just(" ")
        piece = st.sampled_from([f for f in FRAGMENTS if one_line_problem(f) is None]) | st.text(chars, max_size=4)
    else:
        piece = st.sampled_from(FRAGMENTS) | st.text(max_size=4)
    return st.lists(piece, min_size=min_size, max_size=8).map("".join)


def test_property_labels_and_plan_fields_stay_data(renderer: BlueprintRenderer, small_plan, monkeypatch):
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from scaffolder.errors import ScaffoldError
    from scaffolder.plan import PortPlan

    monkeypatch.setenv("HF_TOKEN", SECRET)
    # Only the files that the varied fields reach are rendered per example (a probe plan with other values
    # for all of them shows which); the rest cannot change with them.
    probe = PortPlan.from_answers({**small_plan.answers(), "num_classes": 2, "class_names": ["p", "q"],
                                   "model": "probe", "strategy_reason": "probe", "mapping_notes": ["probe"],
                                   "export_notes": ["probe"], "architectures": ["Probe"]})
    sources = renderer.sources_using(small_plan, probe)
    base = renderer.render(small_plan, sources)
    assert "tao-pytorch/nvidia_tao_pytorch/config/prop_port/default_config.py" in base and len(base) < len(renderer.sources)
    shapes = {rel: _shape(ast.parse(text)) for rel, text in base.items() if rel.endswith(".py")}
    counts = {"rendered": 0, "refused": 0}

    @settings(max_examples=int(os.environ.get("TAO_SCAFFOLD_PROPERTY_EXAMPLES", "300")), deadline=None,
              suppress_health_check=list(HealthCheck), database=None,
              phases=[Phase.explicit, Phase.generate])  # no shrinking: a failure prints its example as found
    @given(labels=st.lists(_text(1).filter(lambda s: 0 < len(s) <= 256), min_size=1, max_size=4),
           model=_text(printable=True), reason=_text(printable=True), note=_text(printable=True),
           arch=_text(printable=True), hostile=st.none() | st.tuples(st.sampled_from(FREE_TEXT), _text()))
    def check(labels, model, reason, note, arch, hostile):
        data = {**small_plan.answers(), "num_classes": len(labels), "class_names": labels, "model": model,
                "strategy_reason": reason, "mapping_notes": [note], "export_notes": [note], "architectures": [arch]}
        if hostile:  # one free-text field with anything in it: rendered safely, or refused in one line
            field, text = hostile
            data[field] = [text] if isinstance(data[field], list) else text
        try:
            plan = PortPlan.from_answers(data)
        except ScaffoldError as exc:  # free text that is not one printable line: refused, in one line
            assert "\n" not in exc.one_line() and exc.hint
            counts["refused"] += 1
            return
        counts["rendered"] += 1
        files = renderer.render(plan, sources)
        assert set(files) == set(base)
        for rel, text in files.items():
            assert SECRET not in text and "\u202e" not in text and "\x85" not in text and "\u2028" not in text, rel
            if rel.endswith(".py"):
                tree = ast.parse(text)  # compiles...
                assert _shape(tree) == shapes[rel], f"{rel}: a plan string changed the code"  # ...strings as data
            elif rel.endswith(".yaml"):  # TAO specs (the answers file is plain YAML, checked below)
                assert _spec_resolves_unchanged(text), rel
        answers = yaml.load(files["tao-pytorch/nvidia_tao_pytorch/cv/prop_port/.tao-scaffold-answers.yml"],
                            Loader=yaml.CSafeLoader)
        assert {k: v for k, v in answers.items() if not k.startswith("_")} == plan.answers()
        config = files["tao-pytorch/nvidia_tao_pytorch/config/prop_port/default_config.py"]
        constant = next(n.value for n in ast.parse(config).body
                        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CLASS_NAMES")
        assert _resolved(ast.literal_eval(constant)) == labels  # what TAO's config system returns
        assert PortPlan.from_answers(yaml.load(plan.to_yaml(), Loader=yaml.CSafeLoader)) == plan  # port.yml

    check()
    assert counts["rendered"] >= counts["refused"], counts  # the strategy must exercise rendering


# -- docker runner: SIGTERM removes the container ------------------------------------------------------------

DOCKER_CHILD = r"""
import sys, time, docker
from pathlib import Path
from scaffolder.verify.docker_runner import DockerSession
image, ws, label = sys.argv[1:4]
with DockerSession(docker.from_env(), image, Path(ws), "tao-pytorch", setup=False, labels={"tao-scaffold.test": label}) as s:
    print(s.name, flush=True)
    time.sleep(120)
"""


def test_docker_session_removes_its_container_on_sigterm(docker_engine, tmp_path: Path):
    from tests.conftest import DOCKER_TEST_IMAGE

    label = f"sigterm-{os.getpid()}-{tmp_path.name}"
    env = dict(os.environ, PYTHONPATH=str(PROJECT), PYTHONDONTWRITEBYTECODE="1")
    child = subprocess.Popen([sys.executable, "-c", DOCKER_CHILD, DOCKER_TEST_IMAGE, str(tmp_path), label],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=PROJECT)
    try:
        name = child.stdout.readline().strip()
        assert name, child.stderr.read()[-2000:]
        assert docker_engine.containers.get(name).status == "running"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=120) != 0
        assert docker_engine.containers.list(all=True, filters={"label": f"tao-scaffold.test={label}"}) == []
    finally:
        child.kill()
        for leftover in docker_engine.containers.list(all=True, filters={"label": f"tao-scaffold.test={label}"}):
            leftover.remove(force=True)
