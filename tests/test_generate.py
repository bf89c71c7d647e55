"""`generate` end to end on a real TAO 7.3.0 workspace (``workspace init --from-pypi 7.3.0``).

Nothing is mocked: the CLI runs Copier, libcst, black and git for real, and the checks use real git, black,
``py_compile``, pylint and the TAO packages. Expensive set-ups are shared per module where the tests only
read them (``vit_port``: one cold-process ``generate`` of the offline ViT-B example, then a second one
after committing; ``clean_workspace``: a workspace that error tests must leave byte-identical, which each
test checks for itself).

Every ``generate`` here uses ``--template`` with a snapshot clone of this checkout (its blueprints as they
are in the working tree, plus an untracked file so Copier takes its "dirty template" path, as it does in a
development checkout). Other engineers edit this checkout concurrently; the snapshot keeps the blueprints
stable for the length of a test.

Unwritable workspaces: the tests run as root, for whom ``chmod -w`` blocks nothing, and ``nobody`` cannot
run the venv interpreter (it lives under /root, mode 0700). They use read-only bind mounts inside a
private mount namespace (``unshare -m``) around the CLI process instead, so the kernel itself refuses the
writes (EROFS); a bind-mounted file makes the N-th ``os.replace`` of the commit step fail (EBUSY). Those
tests are skipped where mount namespaces are not permitted.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import json
import os
import py_compile
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import black
import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT / "examples" / "google-vit-base-patch16-224"
NAME = "vit_imagenet100"
REPOS = ("tao-core", "tao-pytorch", "tao-deploy")
STAGING_PREFIX = ".tao-scaffold-staging-"
BLACK_MODE = black.Mode(line_length=120)  # the mode scaffolder.render formats generated code with
_PROGRESS = re.compile(r"^\[\s*\d+\.\d+s\] \S")


# -- helpers (test_cli.py and test_copier_plain.py import these) ------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")  # read-only git: never refresh the index
    cmd = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args]
    return subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True, env=env).stdout


def commit_all(workspace: Path, message: str) -> None:
    for repo in REPOS:
        git(workspace / repo, "add", "-A")
        git(workspace / repo, "commit", "-qm", message, "--allow-empty")


def porcelain(workspace: Path) -> dict[str, str]:
    """``git status --porcelain`` of each repository of the workspace that exists."""
    return {repo: git(workspace / repo, "status", "--porcelain", "--untracked-files=all")
            for repo in REPOS if (workspace / repo / ".git").exists()}


def snapshot(workspace: Path) -> dict[str, object]:
    """Every path under the workspace (``.git`` included) -> (mode, sha256 | link target | 'dir'), plus git status."""
    state: dict[str, object] = {}
    for path in sorted(workspace.rglob("*")):
        rel = path.relative_to(workspace).as_posix()
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            state[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            state[rel] = (stat.S_IMODE(st.st_mode), "dir")
        else:
            state[rel] = (stat.S_IMODE(st.st_mode), hashlib.sha256(path.read_bytes()).hexdigest())
    state["<git status>"] = porcelain(workspace)  # after hashing: git status must not change the files
    return state


def assert_unchanged(workspace: Path, before: dict[str, object]) -> None:
    after = snapshot(workspace)
    if after != before:
        added = sorted(set(after) - set(before))[:10]
        removed = sorted(set(before) - set(after))[:10]
        changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])[:10]
        pytest.fail(f"workspace changed: added {added}, removed {removed}, changed {changed}")
    assert not [p for p in os.listdir(workspace) if p.startswith(STAGING_PREFIX)], "staging folder left behind"


def copy_workspace(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return dest


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("tao-scaffold")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scaffolder.cli"]


def run_cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """The real console script in a fresh process (cold imports), like a user runs it."""
    full_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env or {}))
    return subprocess.run([*(prefix or []), *cli_command(), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def call_main(*args: str) -> tuple[int, str, str]:
    """``scaffolder.cli.main`` in this process (same code path, without paying the imports again)."""
    from scaffolder.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exc:  # argparse (--help, usage errors)
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


def error_line(stderr: str) -> str:
    """The single ``tao-scaffold: error:`` line of a failed run (progress lines aside)."""
    lines = [line for line in stderr.splitlines() if not _PROGRESS.match(line)]
    assert len(lines) == 1, f"expected exactly one non-progress line on stderr, got: {stderr!r}"
    assert lines[0].startswith("tao-scaffold: error: "), lines[0]
    return lines[0]


def make_template_snapshot(dest: Path, *, dirty: bool) -> Path:
    """A git clone of this project with its working-tree blueprints (committed unless ``dirty``)."""
    subprocess.run(["git", "clone", "-q", str(PROJECT), str(dest)], check=True)
    shutil.copy2(PROJECT / "copier.yml", dest / "copier.yml")
    shutil.rmtree(dest / "blueprints")
    shutil.copytree(PROJECT / "blueprints", dest / "blueprints")
    if dirty:
        (dest / "port.yml").write_text("# a user's scratch plan, never committed\n")
    else:
        git(dest, "add", "-A")
        git(dest, "commit", "-qm", "blueprints as in the working tree", "--allow-empty")
    return dest


def written_files(stdout: str) -> dict[str, str]:
    """``relpath -> new|changed|unchanged`` from generate's file listing."""
    return dict((m.group(2), m.group(1)) for m in re.finditer(r"^  (new|changed|unchanged) +(\S+)$", stdout, re.M))


def pythonpath_env(*paths: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, paths)), PYTHONDONTWRITEBYTECODE="1")


def load_default_config(workspace: Path, package: str, name: str) -> dict:
    """Import the generated default_config of ``package`` in a fresh interpreter; return what it defines."""
    roots = {
        "nvidia_tao_core": [workspace / "tao-core"],
        "nvidia_tao_pytorch": [workspace / "tao-core", workspace / "tao-pytorch"],
        "nvidia_tao_deploy": [workspace / "tao-deploy"],
    }[package]
    code = (
        "import json, sys\n"
        f"import {package}\n"
        f"from {package}.config.{name} import default_config as m\n"
        "c = m.ExperimentConfig()\n"
        "json.dump({'module_file': m.__file__, 'package_file': " + package + ".__file__,\n"
        "  'CLASS_NAMES': m.CLASS_NAMES, 'SOURCE_MODEL': m.SOURCE_MODEL,\n"
        "  'class_names': list(c.dataset.class_names), 'num_classes': c.dataset.num_classes,\n"
        "  'img_size': c.dataset.img_size, 'backbone': c.model.backbone.type,\n"
        "  'in_channels': c.model.head.in_channels, 'mean': list(c.dataset.augmentation.mean),\n"
        "  'std': list(c.dataset.augmentation.std), 'model_name': c.model_name}, sys.stdout)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                          env=pythonpath_env(*roots), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    assert Path(data["package_file"]).is_relative_to(roots[-1]), "imported the installed TAO, not the workspace's"
    return data


def mount_namespaces_work() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind / / && mount -o remount,ro,bind / /"],
                           capture_output=True)
    return probe.returncode == 0


needs_mount_ns = pytest.mark.skipif(not mount_namespaces_work(),
                                    reason="needs root and `unshare -m` (private mount namespaces)")


def in_mount_namespace(*mount_commands: str) -> list[str]:
    """A command prefix running the CLI in a private mount namespace after ``mount_commands``."""
    return ["unshare", "-m", "sh", "-ec", "; ".join(mount_commands) + '; exec "$@"', "sh"]


def readonly_bind(path: Path) -> tuple[str, str]:
    quoted = f"'{path}'"
    return f"mount --bind {quoted} {quoted}", f"mount -o remount,ro,bind {quoted} {quoted}"


# -- expected tree -----------------------------------------------------------------------------------------


def required_files(name: str) -> set[str]:
    """The files the issue's "done when" names (black-formatted Python unless .yaml)."""
    out = set()
    for repo, pkg in (("tao-core", "nvidia_tao_core"), ("tao-pytorch", "nvidia_tao_pytorch"),
                      ("tao-deploy", "nvidia_tao_deploy")):
        out |= {f"{repo}/{pkg}/config/{name}/{f}" for f in ("__init__.py", "default_config.py",
                                                             "model_params_mapping.py")}
    pt = f"tao-pytorch/nvidia_tao_pytorch/cv/{name}"
    out |= {f"{pt}/__init__.py", f"{pt}/model/__init__.py", f"{pt}/dataloader/__init__.py",
            f"{pt}/entrypoint/__init__.py", f"{pt}/entrypoint/{name}.py", f"{pt}/scripts/__init__.py",
            f"{pt}/experiment_specs/experiment_spec.yaml"}
    out |= {f"{pt}/scripts/{s}.py" for s in ("train", "evaluate", "inference", "export")}
    dp = f"tao-deploy/nvidia_tao_deploy/cv/{name}"
    out |= {f"{dp}/__init__.py", f"{dp}/entrypoint/__init__.py", f"{dp}/entrypoint/{name}.py",
            f"{dp}/scripts/__init__.py"}
    out |= {f"{dp}/scripts/{s}.py" for s in ("gen_trt_engine", "inference", "evaluate")}
    out |= {f"{dp}/specs/{s}.yaml" for s in ("gen_trt_engine", "inference", "evaluate")}
    out |= {f"tao-pytorch/tests/cv_unit_test/{name}/test_{name}.py", f"tao-deploy/tests/{name}/test_{name}.py"}
    return out


def port_roots(name: str) -> tuple[str, ...]:
    """Folders a port may create files in (besides the two setup.py files it patches)."""
    return (
        f"tao-core/nvidia_tao_core/config/{name}/",
        f"tao-pytorch/nvidia_tao_pytorch/config/{name}/",
        f"tao-deploy/nvidia_tao_deploy/config/{name}/",
        f"tao-pytorch/nvidia_tao_pytorch/cv/{name}/",
        f"tao-deploy/nvidia_tao_deploy/cv/{name}/",
        f"tao-pytorch/tests/cv_unit_test/{name}/",
        f"tao-deploy/tests/{name}/",
    )


def console_entry(package: str, name: str) -> str:
    return f"{name}={package}.cv.{name}.entrypoint.{name}:main"


# -- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_snapshot(tmp_path_factory) -> Path:
    return make_template_snapshot(tmp_path_factory.mktemp("template") / "tao-scaffold", dirty=True)


@pytest.fixture(scope="module")
def clean_workspace(tao_workspace_template: Path, tmp_path_factory) -> Path:
    """A workspace copy for tests that must leave it byte-identical (each asserts so itself)."""
    return copy_workspace(tao_workspace_template, tmp_path_factory.mktemp("clean") / "ws")


@dataclass
class PortRun:
    workspace: Path
    before: dict[str, object]
    first: subprocess.CompletedProcess
    first_status: dict[str, str]
    setup_diffs: dict[str, str]
    setup_numstat: dict[str, str]
    new_files: set[str]
    modified_files: set[str]
    second: tuple[int, str, str] = (0, "", "")
    second_status: dict[str, str] = field(default_factory=dict)
    second_snapshot_equal: bool = False


@pytest.fixture(scope="module")
def vit_port(tao_workspace_template: Path, template_snapshot: Path, tmp_path_factory) -> PortRun:
    """generate (cold CLI process) -> record -> commit in each repo -> generate again -> record."""
    ws = copy_workspace(tao_workspace_template, tmp_path_factory.mktemp("vit") / "ws")
    before = snapshot(ws)
    first = run_cli("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(ws),
                    "--template", str(template_snapshot))
    assert first.returncode == 0, first.stderr
    status = porcelain(ws)
    new, modified = set(), set()
    for repo, text in status.items():
        for line in text.splitlines():
            code, rel = line[:2], line[3:]
            (new if code == "??" else modified).add(f"{repo}/{rel}")
    run = PortRun(
        workspace=ws, before=before, first=first, first_status=status,
        setup_diffs={r: git(ws / r, "diff", "--", "setup.py") for r in ("tao-pytorch", "tao-deploy")},
        setup_numstat={r: git(ws / r, "diff", "--numstat", "--", "setup.py") for r in ("tao-pytorch", "tao-deploy")},
        new_files=new, modified_files=modified,
    )
    commit_all(ws, "first generate")
    committed = snapshot(ws)
    run.second = call_main("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(ws),
                           "--template", str(template_snapshot))
    run.second_status = porcelain(ws)
    run.second_snapshot_equal = snapshot(ws) == committed
    return run


# -- the ViT example: tree, registries, reproducibility ----------------------------------------------------


def test_generate_writes_the_full_tree(vit_port: PortRun):
    assert vit_port.first.returncode == 0
    missing = required_files(NAME) - vit_port.new_files
    assert not missing, f"not generated: {sorted(missing)}"
    stray = [f for f in vit_port.new_files if not f.startswith(port_roots(NAME))]
    assert not stray, f"files outside the port's folders: {stray}"
    assert vit_port.modified_files == {"tao-pytorch/setup.py", "tao-deploy/setup.py"}
    # the CLI lists exactly what it wrote
    listed = written_files(vit_port.first.stdout)
    assert set(listed) == vit_port.new_files | vit_port.modified_files
    assert {listed["tao-pytorch/setup.py"], listed["tao-deploy/setup.py"]} == {"changed"}
    assert f"{NAME}: wrote {len(listed)} files (0 unchanged), 2 registry edits" in vit_port.first.stdout


def test_generate_reports_progress_on_stderr(vit_port: PortRun):
    lines = vit_port.first.stderr.splitlines()
    assert lines and all(_PROGRESS.match(line) for line in lines), lines
    steps = [re.sub(r"^\[\s*[\d.]+s\] ", "", line).split(":")[0] for line in lines]
    core = ["inspect", "plan", "render", "patch", "format", "write"]  # in this order; other steps may come between
    assert [step for step in steps if step in core] == core, steps
    assert steps[0] == "inspect" and steps[-1] == "write", steps
    assert "tao-scaffold: error" not in vit_port.first.stdout


@pytest.mark.parametrize("repo,package", [("tao-pytorch", "nvidia_tao_pytorch"), ("tao-deploy", "nvidia_tao_deploy")])
def test_setup_py_gets_exactly_one_added_line(vit_port: PortRun, repo: str, package: str):
    from scaffolder.workspace import read_console_scripts

    assert vit_port.setup_numstat[repo].split() == ["1", "0", "setup.py"], vit_port.setup_diffs[repo]
    added = [ln[1:] for ln in vit_port.setup_diffs[repo].splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert len(added) == 1
    # same quoting and indentation as its neighbours (comments and formatting kept: nothing else changed)
    assert added[0].strip() == f"'{console_entry(package, NAME)}',", added
    neighbour = next(ln for ln in vit_port.setup_diffs[repo].splitlines() if ln.startswith(" ") and "=nvidia_tao" in ln)
    assert len(added[0]) - len(added[0].lstrip()) == len(neighbour[1:]) - len(neighbour[1:].lstrip())
    entries = read_console_scripts(vit_port.workspace / repo / "setup.py")
    assert entries.count(console_entry(package, NAME)) == 1
    assert f"registry  {repo}/setup.py: console_scripts += {console_entry(package, NAME)}" in vit_port.first.stdout


@pytest.mark.parametrize("repo,package", [("tao-pytorch", "nvidia_tao_pytorch"), ("tao-deploy", "nvidia_tao_deploy")])
def test_console_script_targets_exist(vit_port: PortRun, repo: str, package: str):
    module = vit_port.workspace / repo / package / "cv" / NAME / "entrypoint" / f"{NAME}.py"
    tree = ast.parse(module.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)


def test_second_generate_changes_nothing(vit_port: PortRun):
    rc, out, err = vit_port.second
    assert rc == 0, err
    assert vit_port.second_status == {repo: "" for repo in REPOS}, vit_port.second_status
    assert vit_port.second_snapshot_equal, "second generate touched the workspace (even .git)"
    assert f"{NAME}: wrote 0 files" in out and "0 registry edits" in out
    assert "registry  " not in out


def test_generated_python_is_black_formatted_and_compiles(vit_port: PortRun, tmp_path: Path):
    py_files = sorted(f for f in vit_port.new_files if f.endswith(".py"))
    assert len(py_files) >= 30
    for rel in py_files:
        source = (vit_port.workspace / rel).read_text()
        with pytest.raises(black.NothingChanged):
            black.format_file_contents(source, fast=False, mode=BLACK_MODE)
        py_compile.compile(str(vit_port.workspace / rel), cfile=str(tmp_path / "out.pyc"), doraise=True)
    for rel in sorted(vit_port.modified_files):  # the patched setup.py files (not ours to format)
        py_compile.compile(str(vit_port.workspace / rel), cfile=str(tmp_path / "out.pyc"), doraise=True)


def test_generated_yaml_parses_with_the_model_values(vit_port: PortRun):
    ws = vit_port.workspace
    spec = yaml.safe_load((ws / f"tao-pytorch/nvidia_tao_pytorch/cv/{NAME}/experiment_specs/experiment_spec.yaml").read_text())
    assert spec["model"]["backbone"]["type"] == "vit_base_patch16"
    assert spec["model"]["head"]["in_channels"] == 768
    assert spec["dataset"]["num_classes"] == 1000 and spec["dataset"]["img_size"] == 224
    assert spec["dataset"]["augmentation"]["mean"] == [0.5, 0.5, 0.5]
    assert spec["dataset"]["augmentation"]["std"] == [0.5, 0.5, 0.5]
    assert spec["export"]["input_width"] == spec["export"]["input_height"] == 224
    for sub in ("gen_trt_engine", "inference", "evaluate"):
        deploy = yaml.safe_load((ws / f"tao-deploy/nvidia_tao_deploy/cv/{NAME}/specs/{sub}.yaml").read_text())
        assert sub in deploy
        assert deploy["model"]["backbone"]["type"] == "vit_base_patch16"
        assert deploy["dataset"]["augmentation"] == spec["dataset"]["augmentation"]
        assert deploy["dataset"]["num_classes"] == 1000 and deploy["dataset"]["img_size"] == 224


@pytest.mark.parametrize("package", ["nvidia_tao_core", "nvidia_tao_pytorch", "nvidia_tao_deploy"])
def test_generated_default_config_imports(vit_port: PortRun, package: str):
    cfg = load_default_config(vit_port.workspace, package, NAME)
    labels = json.loads((EXAMPLE / "config.json").read_text())["id2label"]
    assert cfg["CLASS_NAMES"] == [labels[str(i)] for i in range(1000)]
    assert cfg["class_names"] == cfg["CLASS_NAMES"]
    assert (cfg["backbone"], cfg["in_channels"], cfg["img_size"], cfg["num_classes"]) == ("vit_base_patch16", 768, 224, 1000)
    assert cfg["mean"] == cfg["std"] == [0.5, 0.5, 0.5]
    assert cfg["model_name"] == NAME


# -- pylint --errors-only ----------------------------------------------------------------------------------

# pylint cannot see that TAO's @hydra_runner supplies `cfg`, so `main()` in every scripts/*.py gets E1120
# no-value-for-parameter. TAO's own scripts (e.g. classification_pyt/scripts/train.py) get the same error;
# some of them silence it with a pylint disable comment on that line. The blueprints do not (yet).
HYDRA_MAIN_E1120 = "E1120"


@pytest.fixture(scope="module")
def pylint_messages(vit_port: PortRun) -> list[dict[str, str]]:
    """pylint --errors-only over the generated Python: pytorch files with PYTHONPATH=tao-core:tao-pytorch,
    deploy files with PYTHONPATH=tao-deploy (both runs in parallel)."""
    ws = vit_port.workspace
    groups = {
        (ws / "tao-core", ws / "tao-pytorch"): sorted(f for f in vit_port.new_files
                                                      if f.endswith(".py") and f.startswith(("tao-core/", "tao-pytorch/"))),
        (ws / "tao-deploy",): sorted(f for f in vit_port.new_files if f.endswith(".py") and f.startswith("tao-deploy/")),
    }
    procs = []
    for roots, files in groups.items():
        assert files
        cmd = [sys.executable, "-m", "pylint", "--errors-only", "--score=n", "--persistent=n",
               "--msg-template={path}|{line}|{msg_id}|{symbol}|{msg}", *files]
        procs.append(subprocess.Popen(cmd, cwd=ws, env=pythonpath_env(*roots), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    messages = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode in (0, 2), err  # 2: error messages were issued; anything else: pylint broke
        for line in out.splitlines():
            if line.count("|") >= 4:
                path, lineno, msg_id, symbol, msg = line.split("|", 4)
                messages.append(dict(path=path, line=lineno, id=msg_id, symbol=symbol, msg=msg))
    return messages


def _allowed_tensorrt(m: dict[str, str]) -> bool:
    return m["id"] == "E0401" and m["path"].startswith("tao-deploy/") and m["msg"] == "Unable to import 'tensorrt'"


def _hydra_main(m: dict[str, str], workspace: Path) -> bool:
    if m["id"] != HYDRA_MAIN_E1120 or "/scripts/" not in m["path"]:
        return False
    return (workspace / m["path"]).read_text().splitlines()[int(m["line"]) - 1].strip() == "main()"


def test_pylint_errors_only_is_clean_except_tensorrt_and_hydra_main(vit_port: PortRun, pylint_messages):
    """The only errors: E0401 for tensorrt in tao-deploy (not installed on CPU machines) and the known
    E1120 on the hydra ``main()`` call (see test_pylint_errors_only_is_clean_except_tensorrt)."""
    unexpected = [m for m in pylint_messages if not _allowed_tensorrt(m) and not _hydra_main(m, vit_port.workspace)]
    assert not unexpected, "\n".join(f"{m['path']}:{m['line']}: {m['id']} {m['msg']}" for m in unexpected)
    # tensorrt really is imported by the deploy modules that need it, and flagged for nothing else
    assert {m["path"] for m in pylint_messages if _allowed_tensorrt(m)}


def test_pylint_errors_only_is_clean_except_tensorrt(pylint_messages):
    unexpected = [m for m in pylint_messages if not _allowed_tensorrt(m)]
    assert not unexpected, "\n".join(f"{m['path']}:{m['line']}: {m['id']} {m['msg']}" for m in unexpected)


# -- dry run -----------------------------------------------------------------------------------------------


def test_dry_run_lists_files_and_registry_edits_and_writes_nothing(clean_workspace: Path, template_snapshot: Path,
                                                                   vit_port: PortRun):
    before = snapshot(clean_workspace)
    rc, out, err = call_main("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace",
                             str(clean_workspace), "--template", str(template_snapshot), "--dry-run")
    assert rc == 0, err
    assert_unchanged(clean_workspace, before)
    listed = written_files(out)
    # exactly the files the real run wrote, with the same statuses
    assert set(listed) == vit_port.new_files | vit_port.modified_files
    assert listed == written_files(vit_port.first.stdout)
    for repo, package in (("tao-pytorch", "nvidia_tao_pytorch"), ("tao-deploy", "nvidia_tao_deploy")):
        assert f"registry  {repo}/setup.py: console_scripts += {console_entry(package, NAME)}" in out
    assert f"{NAME}: would write {len(listed)} files (0 unchanged), 2 registry edits" in out


# -- names: collisions with TAO networks -------------------------------------------------------------------


@pytest.mark.parametrize("name,where", [
    ("segformer", "tao-pytorch/nvidia_tao_pytorch/cv/segformer"),
    ("classification_pyt", "tao-pytorch/nvidia_tao_pytorch/cv/classification_pyt"),
    # only a console script: tao-deploy registers yolo_v4_tiny to yolo_v4's entrypoint
    ("yolo_v4_tiny", "tao-deploy/setup.py console_scripts"),
])
def test_refuses_names_of_existing_networks(clean_workspace: Path, template_snapshot: Path, name: str, where: str):
    before = snapshot(clean_workspace)
    rc, out, err = call_main("-q", "generate", "--model", str(EXAMPLE), "--name", name, "--workspace",
                             str(clean_workspace), "--template", str(template_snapshot))
    assert rc == 2 and out == ""
    assert error_line(err) == f"tao-scaffold: error: {name!r} is already a TAO network ({where}) -- choose another --name"
    assert_unchanged(clean_workspace, before)


def test_refuses_a_name_registered_to_something_else(tao_workspace: Path, template_snapshot: Path):
    """A console script of that name pointing elsewhere, with no network folder: refused, nothing written."""
    setup = tao_workspace / "tao-pytorch" / "setup.py"
    text = setup.read_text()
    anchor = "'visual_changenet=nvidia_tao_pytorch.cv.visual_changenet.entrypoint.visual_changenet:main',"
    assert anchor in text
    setup.write_text(text.replace(anchor, anchor + "\n            'my_port=some.other.tool:main',"))
    commit_all(tao_workspace, "someone else's my_port")
    before = snapshot(tao_workspace)
    rc, out, err = call_main("-q", "generate", "--model", str(EXAMPLE), "--name", "my_port", "--workspace",
                             str(tao_workspace), "--template", str(template_snapshot))
    assert rc == 2
    assert "'my_port' is already a TAO network (tao-pytorch/setup.py console_scripts)" in error_line(err)
    assert_unchanged(tao_workspace, before)


# -- untrusted HF metadata ---------------------------------------------------------------------------------

NASTY_LABELS = [
    "x'); import os #",
    "{{ 7*7 }}",
    "{% raw %}{{ name }}{% endraw %}",
    'tri"""ple \'\'\' quotes',
    "back\\slash\\n and a real\nnewline",
    "${results_dir} {name} %(x)s",
    "tab\there; # not a comment",
    "ünïcødé 猫 \u2028 line separator",
    "</script><!-- -->",
    "LABEL_9",
]


def test_hf_metadata_reaches_generated_code_only_as_data(tao_workspace: Path, template_snapshot: Path, tmp_path: Path):
    from tests.model_factory import make_model_dir

    # the folder name becomes SOURCE_MODEL, an architecture name goes into the answers file
    model = make_model_dir(tmp_path / "model x'); import os #{{ 7*7 }}", "vit", full_size=True, weights=False,
                           id2label=dict(enumerate(NASTY_LABELS)))
    config = json.loads((model / "config.json").read_text())
    config["architectures"].append("Evil\"'); import os #{{ 7*7 }}")
    (model / "config.json").write_text(json.dumps(config))

    rc, out, err = call_main("-q", "generate", "--model", str(model), "--name", "nasty_port", "--workspace",
                             str(tao_workspace), "--template", str(template_snapshot))
    assert rc == 0, err
    from omegaconf import OmegaConf

    def as_tao_reads(values):  # the constants are config defaults: `${` is escaped for OmegaConf
        return OmegaConf.to_container(OmegaConf.create({"v": values}), resolve=True)["v"]

    for package in ("nvidia_tao_core", "nvidia_tao_pytorch", "nvidia_tao_deploy"):
        cfg = load_default_config(tao_workspace, package, "nasty_port")
        assert as_tao_reads(cfg["CLASS_NAMES"]) == NASTY_LABELS
        assert as_tao_reads(cfg["class_names"]) == NASTY_LABELS
        assert cfg["SOURCE_MODEL"] == model.name  # the folder's name: never a path of this machine
        assert cfg["num_classes"] == len(NASTY_LABELS)
    answers = yaml.safe_load((tao_workspace / "tao-pytorch/nvidia_tao_pytorch/cv/nasty_port/.tao-scaffold-answers.yml").read_text())
    assert answers["class_names"] == NASTY_LABELS
    assert answers["architectures"] == config["architectures"]
    assert answers["model"] == model.name
    # the template-looking label is in the source verbatim (a string literal), not rendered to 49
    source = (tao_workspace / "tao-pytorch/nvidia_tao_pytorch/config/nasty_port/default_config.py").read_text()
    assert '"{{ 7*7 }}",' in source
    # and every generated file still compiles / parses
    for rel in written_files(out):
        path = tao_workspace / rel
        if rel.endswith(".py"):
            py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)
        elif rel.endswith((".yaml", ".yml")):
            yaml.safe_load(path.read_text())


def test_non_bmp_labels_survive(template_snapshot: Path, tmp_path: Path):
    from scaffolder.plan import PortPlan
    from scaffolder.render import render

    labels = ["cat 🐱", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"]
    plan = PortPlan(name="emoji_port", task="classification", backbone="vit_base_patch16", num_features=768,
                    num_classes=2, class_names=labels)
    render(plan, tmp_path / "tree", template=template_snapshot)
    source = (tmp_path / "tree/tao-pytorch/nvidia_tao_pytorch/config/emoji_port/default_config.py").read_text()
    value = next(n.value for n in ast.parse(source).body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CLASS_NAMES")
    assert ast.literal_eval(value) == labels


# -- backbones and their values ----------------------------------------------------------------------------

BACKBONES = {
    # kind: (expected backbone, head width, image size, mean, std, make_model_dir kwargs, --num-classes)
    "vit": ("vit_base_patch16", 768, 224, [0.5] * 3, [0.5] * 3, {}, None),
    "swin": ("swin_tiny_patch4_window7_224", 768, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225],
             {"id2label": {0: "cat", 1: "dog", 2: "bird", 3: "fish", 4: "horse"}}, None),
    "convnext": ("convnext_tiny", 768, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], {}, None),
    "resnet": ("resnet_50", 2048, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], {}, 10),
}


@pytest.mark.parametrize("kind", list(BACKBONES))
def test_backbone_plan_and_rendered_specs(kind: str, template_snapshot: Path, tmp_path: Path):
    from scaffolder.plan import PortPlan
    from scaffolder.render import render
    from tests.model_factory import imagenet_labels, make_model_dir

    backbone, width, size, mean, std, extra, num_classes = BACKBONES[kind]
    model = make_model_dir(tmp_path / f"hf-{kind}", kind, full_size=True, weights=False, **extra)
    args = ["-q", "inspect", str(model), "--name", f"{kind}_port", "--out", str(tmp_path / "port.yml")]
    if num_classes:
        args += ["--num-classes", str(num_classes)]
    rc, out, err = call_main(*args)
    assert rc == 0, err
    plan = PortPlan.read(tmp_path / "port.yml")
    if num_classes:  # --num-classes wins over the 1000 HF labels; names become placeholders
        labels = [f"class_{i}" for i in range(num_classes)]
    elif "id2label" in extra:
        labels = [extra["id2label"][i] for i in range(len(extra["id2label"]))]
    else:
        labels = list(imagenet_labels())
    assert (plan.backbone, plan.num_features, plan.img_size) == (backbone, width, size)
    assert plan.mean == pytest.approx(mean) and plan.std == pytest.approx(std)
    assert (plan.num_classes, plan.class_names) == (len(labels), labels)
    assert f"TAO backbone:   {backbone}" in out and f"features:       {width}" in out

    tree = tmp_path / "tree"
    render(plan, tree, template=template_snapshot)
    spec = yaml.safe_load((tree / f"tao-pytorch/nvidia_tao_pytorch/cv/{kind}_port/experiment_specs/experiment_spec.yaml").read_text())
    assert spec["model"]["backbone"]["type"] == backbone and spec["model"]["head"]["in_channels"] == width
    assert spec["dataset"]["img_size"] == size and spec["dataset"]["num_classes"] == len(labels)
    assert spec["dataset"]["augmentation"]["mean"] == pytest.approx(mean)
    assert spec["dataset"]["augmentation"]["std"] == pytest.approx(std)
    deploy = yaml.safe_load((tree / f"tao-deploy/nvidia_tao_deploy/cv/{kind}_port/specs/inference.yaml").read_text())
    assert deploy["model"]["backbone"]["type"] == backbone and deploy["dataset"]["num_classes"] == len(labels)
    source = (tree / f"tao-pytorch/nvidia_tao_pytorch/config/{kind}_port/default_config.py").read_text()
    consts = {n.targets[0].id: n.value for n in ast.parse(source).body
              if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
    assert ast.literal_eval(consts["CLASS_NAMES"]) == labels
    assert ast.literal_eval(consts["DEFAULT_BACKBONE"]) == backbone
    mapping = (tree / f"tao-pytorch/nvidia_tao_pytorch/config/{kind}_port/model_params_mapping.py").read_text()
    assert f'"{backbone}": {width}' in black.format_str(mapping, mode=BLACK_MODE)


# -- all or nothing: failures leave the workspace as it was ------------------------------------------------


def test_missing_repo(tao_workspace: Path, template_snapshot: Path):
    shutil.rmtree(tao_workspace / "tao-deploy")
    before = snapshot(tao_workspace)
    rc, out, err = call_main("-q", "generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace",
                             str(tao_workspace), "--template", str(template_snapshot))
    assert rc == 2
    line = error_line(err)
    assert "has no tao-deploy repository" in line and "git clone https://github.com/NVIDIA-TAO/tao-deploy.git" in line
    assert_unchanged(tao_workspace, before)


def test_dirty_target_repo(tao_workspace: Path, template_snapshot: Path):
    (tao_workspace / "tao-deploy" / "notes.txt").write_text("work in progress\n")
    before = snapshot(tao_workspace)
    rc, out, err = call_main("-q", "generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace",
                             str(tao_workspace), "--template", str(template_snapshot))
    assert rc == 2
    assert error_line(err) == ("tao-scaffold: error: tao-deploy has uncommitted changes: notes.txt -- "
                               "commit or stash, or pass --allow-dirty")
    assert_unchanged(tao_workspace, before)


def test_failure_during_commit_restores_the_workspace(tao_workspace: Path, template_snapshot: Path):
    """A file where the port needs a directory (tao-pytorch/tests): the commit step fails after it moved the
    tao-core and tao-deploy files, tao-deploy/setup.py and the tao-pytorch package into place; all of it is
    rolled back (new files and folders removed, tao-deploy/setup.py restored from its backup)."""
    (tao_workspace / "tao-pytorch" / "tests").write_text("a file, not a folder\n")
    commit_all(tao_workspace, "tests is a file")
    before = snapshot(tao_workspace)
    rc, out, err = call_main("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace",
                             str(tao_workspace), "--template", str(template_snapshot))
    assert rc == 2, out
    assert "write: " in err  # it got as far as the commit step
    line = error_line(err)
    assert "writing the port failed" in line and "Not a directory" in line and "the workspace was restored" in line
    assert_unchanged(tao_workspace, before)


def test_directory_where_a_file_must_go(tao_workspace: Path, template_snapshot: Path):
    blocker = tao_workspace / f"tao-pytorch/tests/cv_unit_test/{NAME}/test_{NAME}.py"
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("x\n")
    commit_all(tao_workspace, "a folder named like a generated file")
    before = snapshot(tao_workspace)
    rc, out, err = call_main("-q", "generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace",
                             str(tao_workspace), "--template", str(template_snapshot))
    assert rc == 2
    line = error_line(err)
    assert f"cannot write tao-pytorch/tests/cv_unit_test/{NAME}/test_{NAME}.py" in line and "not a file" in line
    assert_unchanged(tao_workspace, before)


@needs_mount_ns
def test_nth_os_replace_failing_restores_the_workspace(tao_workspace: Path, template_snapshot: Path, tmp_path: Path):
    """tao-pytorch/setup.py is a bind-mount point, so renaming the patched copy over it fails (EBUSY) after
    ~30 files and tao-deploy/setup.py were moved in: everything is rolled back."""
    target = tao_workspace / "tao-pytorch" / "setup.py"
    twin = tmp_path / "setup.py"
    shutil.copy2(target, twin)
    before = snapshot(tao_workspace)
    proc = run_cli("generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(tao_workspace),
                   "--template", str(template_snapshot),
                   prefix=in_mount_namespace(f"mount --bind '{twin}' '{target}'"))
    assert proc.returncode == 2, proc.stdout
    assert "write: " in proc.stderr
    line = error_line(proc.stderr)
    assert "writing the port failed" in line and "Device or resource busy" in line and "restored" in line
    assert_unchanged(tao_workspace, before)


@needs_mount_ns
@pytest.mark.parametrize("blocked", ["tao-deploy", "."])
def test_unwritable_workspace(tao_workspace: Path, template_snapshot: Path, blocked: str):
    """A read-only target repo (or the whole workspace) refuses the port before anything is moved."""
    before = snapshot(tao_workspace)
    proc = run_cli("-q", "generate", "--model", str(EXAMPLE), "--name", NAME, "--workspace", str(tao_workspace),
                   "--template", str(template_snapshot),
                   prefix=in_mount_namespace(*readonly_bind((tao_workspace / blocked).resolve())))
    assert proc.returncode == 2, proc.stdout
    line = error_line(proc.stderr)
    if blocked == ".":
        assert f"workspace {tao_workspace} is not writable (Read-only file system)" in line
    else:
        assert "cannot write tao-deploy/" in line and "is not writable" in line
    assert_unchanged(tao_workspace, before)
