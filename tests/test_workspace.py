"""Workspace materialisation from the real TAO 7.3.0 wheels, and the Workspace queries, with real git."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from scaffolder import tao_wheels
from scaffolder.errors import WorkspaceError
from scaffolder.workspace import REPO_NAMES, Workspace, parse_console_scripts, read_console_scripts
from scaffolder.workspace_init import init_from_pypi

TAO_TEST_VERSION = "7.3.0"  # the version the tao_workspace fixtures build
EXPECTED_SCRIPTS = {"tao-core": 3, "tao-pytorch": 30, "tao-deploy": 39}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def wheel_for(repo: str) -> Path:
    wheel = tao_wheels.find_wheel(
        tao_wheels.default_cache(), tao_wheels.TAO_DISTRIBUTIONS[repo], TAO_TEST_VERSION
    )
    assert wheel, f"{repo} wheel missing from {tao_wheels.default_cache()}"
    return wheel


def heads(root: Path) -> dict[str, str]:
    return {name: git(root / name, "rev-parse", "HEAD").strip() for name in REPO_NAMES}


# --- init_from_pypi ------------------------------------------------------------------------------------


def test_template_has_three_repos_with_one_clean_commit(tao_workspace_template: Path):
    root = tao_workspace_template
    assert sorted(p.name for p in root.iterdir()) == sorted(REPO_NAMES)
    assert not (root / ".git").exists(), "the workspace folder itself must not be a git repository"
    for name in REPO_NAMES:
        repo = root / name
        assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
        assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
        assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"
        assert (
            git(repo, "log", "-1", "--format=%an <%ae>").strip()
            == "tao-scaffold <tao-scaffold@noreply.invalid>"
        )


@pytest.mark.parametrize("name", REPO_NAMES)
def test_setup_py_console_scripts_are_the_wheels_entry_points(tao_workspace_template: Path, name: str):
    setup_py = tao_workspace_template / name / "setup.py"
    scripts = read_console_scripts(setup_py)
    assert scripts == tao_wheels.console_scripts(wheel_for(name))
    assert len(scripts) == EXPECTED_SCRIPTS[name]
    # Same shape as NVIDIA's setup.py: setuptools.setup(..., entry_points={'console_scripts': [<literals>]})
    calls = [
        n
        for n in ast.walk(ast.parse(setup_py.read_text()))
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "setuptools.setup"
    ]
    assert len(calls) == 1
    entry_points = next(k.value for k in calls[0].keywords if k.arg == "entry_points")
    assert isinstance(entry_points, ast.Dict) and [k.value for k in entry_points.keys] == ["console_scripts"]
    assert isinstance(entry_points.values[0], ast.List)
    assert all(isinstance(e, ast.Constant) for e in entry_points.values[0].elts)
    assert "'console_scripts': [\n" in setup_py.read_text()


def test_pure_python_only_and_expected_files(tao_workspace_template: Path):
    root = tao_workspace_template
    compiled = [p for p in root.rglob("*") if p.suffix in (".so", ".pyd", ".dll")]
    assert compiled == []
    assert (root / "tao-pytorch/nvidia_tao_pytorch/cv/classification_pyt/model/classifier.py").is_file()
    assert (root / "tao-pytorch/third_party/onnx/utils.py").is_file()
    tracked = git(root / "tao-pytorch", "ls-files").splitlines()
    with zipfile.ZipFile(wheel_for("tao-pytorch")) as zf:
        pure = [n for n in zf.namelist() if ".dist-info/" not in n and not n.endswith(".so")]
    assert sorted(tracked) == sorted(pure + [".gitignore", "README.md", "setup.py"])
    # executable bits come from the wheel (tao-core marks 15 files 0755)
    modes = [line.split()[0] for line in git(root / "tao-core", "ls-files", "-s").splitlines()]
    assert modes.count("100755") == 15


@pytest.mark.parametrize("name", REPO_NAMES)
def test_readme_records_wheel_and_sha256(tao_workspace_template: Path, name: str):
    wheel = wheel_for(name)
    readme = (tao_workspace_template / name / "README.md").read_text()
    assert "materialised from the PyPI wheel" in readme
    assert wheel.name in readme and TAO_TEST_VERSION in readme
    assert tao_wheels.wheel_sha256(wheel) in readme


def test_init_is_reproducible_and_fast(tao_workspace_template: Path, tmp_path: Path, monkeypatch):
    # A second build, made under a hostile environment, gives the very same commits.
    hostile = tmp_path / "gitconfig"
    hostile.write_text(
        "[core]\n\tautocrlf = true\n[user]\n\tname = Someone Else\n[commit]\n\tgpgsign = true\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(hostile))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Not Me")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2001-02-03T04:05:06Z")
    dest = tmp_path / "ws"
    dest.mkdir()  # an existing empty directory is accepted
    messages: list[str] = []
    old_umask = os.umask(0o077)
    try:
        start = time.perf_counter()
        ws = init_from_pypi(dest, TAO_TEST_VERSION, progress=messages.append)
        elapsed = time.perf_counter() - start
    finally:
        os.umask(old_umask)
    print(f"init_from_pypi({TAO_TEST_VERSION}) from cached wheels: {elapsed:.2f}s")
    assert ws.root == dest
    assert heads(dest) == heads(tao_workspace_template)
    assert any(m.startswith("using cached wheel") or m.startswith("downloading") for m in messages)
    assert any("extracting and committing 1650 files" in m and "skipping 12" in m for m in messages)
    assert any("checking out" in m for m in messages)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gitconfig", "ws"], "no staging folder left"


def test_refuses_non_empty_dest(tmp_path: Path):
    dest = tmp_path / "ws"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(WorkspaceError) as err:
        init_from_pypi(dest, TAO_TEST_VERSION)
    assert "not empty" in str(err.value) and "\n" not in str(err.value)
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ws"]


def test_refuses_6x_and_nonsense_versions(tmp_path: Path):
    with pytest.raises(WorkspaceError, match=r"7\.x only"):
        init_from_pypi(tmp_path / "ws", "6.26.3")
    with pytest.raises(WorkspaceError, match="not a TAO version"):
        init_from_pypi(tmp_path / "ws", "latest")
    assert list(tmp_path.iterdir()) == []


def test_unknown_version_fails_and_leaves_nothing(tmp_path: Path):
    cache = tmp_path / "wheels"
    cache.mkdir()
    dest = tmp_path / "deep" / "er" / "ws"
    with pytest.raises(WorkspaceError) as err:
        init_from_pypi(dest, "7.99.99", cache=cache)
    assert "nvidia-tao-core==7.99.99" in str(err.value)
    assert not (tmp_path / "deep").exists(), "parents created for dest must be removed again"
    assert [p.name for p in tmp_path.iterdir()] == ["wheels"]


def test_corrupt_wheel_midway_leaves_nothing(tmp_path: Path):
    """tao-core is built, then the pytorch wheel fails a CRC check while streaming into git."""
    cache = tmp_path / "wheels"
    cache.mkdir()
    for name in ("tao-core", "tao-deploy"):
        (cache / wheel_for(name).name).symlink_to(wheel_for(name))
    source = wheel_for("tao-pytorch")
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as zf:  # damage the first file streamed (sorted order), so it fails at once
        info = min(tao_wheels.wheel_members(source), key=lambda i: i.filename)
        info = next(i for i in zf.infolist() if i.filename == info.filename)
    data[
        info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    ] ^= 0xFF
    (cache / source.name).write_bytes(bytes(data))
    dest = tmp_path / "ws"
    messages: list[str] = []
    with pytest.raises(WorkspaceError, match="not a readable wheel") as err:
        init_from_pypi(dest, TAO_TEST_VERSION, cache=cache, progress=messages.append)
    assert "\n" not in str(err.value) and "retry" in str(err.value)
    assert any(
        m.startswith("tao-core: checking out") for m in messages
    ), "tao-core was built before the failure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wheels"]


# --- Workspace.open ------------------------------------------------------------------------------------


def test_open_valid_workspace(tao_workspace_template: Path):
    ws = Workspace.open(tao_workspace_template)
    assert ws.repo("tao-pytorch") == tao_workspace_template / "tao-pytorch"
    assert ws.repo("deploy") == ws.repo("nvidia_tao_deploy") == tao_workspace_template / "tao-deploy"
    assert ws.package("core") == tao_workspace_template / "tao-core" / "nvidia_tao_core"
    with pytest.raises(ValueError):
        ws.repo("tao-tf1")


def test_open_missing_root(tmp_path: Path):
    with pytest.raises(WorkspaceError, match="does not exist") as err:
        Workspace.open(tmp_path / "nope")
    assert "--from-pypi 7.3.0" in str(err.value)


def test_open_missing_repo(partial_tao_workspace):
    root = partial_tao_workspace(missing=("tao-deploy",))
    with pytest.raises(WorkspaceError) as err:
        Workspace.open(root)
    message = str(err.value)
    assert "\n" not in message
    assert "no tao-deploy repository" in message
    assert "git clone https://github.com/NVIDIA-TAO/tao-deploy.git" in message
    assert "tao-scaffold workspace init DIR --from-pypi 7.3.0" in message
    with pytest.raises(WorkspaceError, match="no tao-core and tao-deploy repositories"):
        Workspace.open(partial_tao_workspace(missing=("tao-core", "tao-deploy")))


def test_open_repo_that_is_not_git(partial_tao_workspace):
    root = partial_tao_workspace(copy=("tao-core",))
    shutil.rmtree(root / "tao-core" / ".git")
    with pytest.raises(WorkspaceError, match=r"tao-core is not a git repository \(not a git repository"):
        Workspace.open(root)
    # a plain folder inside some other repository is not a clone either
    git(root, "init", "-q")
    with pytest.raises(WorkspaceError, match="plain folder inside the git repository"):
        Workspace.open(root)


# --- state -----------------------------------------------------------------------------------------------


def test_dirty_paths_and_ensure_clean(tao_workspace: Path, tao_workspace_template: Path):
    ws = Workspace.open(tao_workspace)
    assert all(ws.dirty_paths(name) == [] for name in REPO_NAMES)
    ws.ensure_clean()
    (tao_workspace / "tao-pytorch" / "setup.py").write_text("# edited\n")
    (tao_workspace / "tao-deploy" / "scratch.txt").write_text("x")
    git(tao_workspace / "tao-deploy", "mv", "README.md", "README.old.md")
    assert ws.dirty_paths("tao-pytorch") == ["setup.py"]
    assert sorted(ws.dirty_paths("tao-deploy")) == ["README.old.md", "scratch.txt"]
    with pytest.raises(WorkspaceError) as err:
        ws.ensure_clean()
    message = str(err.value)
    assert "tao-pytorch has uncommitted changes: setup.py" in message
    assert "tao-deploy has uncommitted changes" in message and "tao-core" not in message
    assert message.endswith("commit or stash, or pass --allow-dirty") and "\n" not in message
    ws.ensure_clean(["tao-core"])  # only the repositories asked about
    # tao_workspace is a private copy: the shared template is untouched
    Workspace.open(tao_workspace_template).ensure_clean()


def test_ensure_clean_lists_first_paths_only(partial_tao_workspace):
    root = partial_tao_workspace(copy=("tao-core",))
    for i in range(5):
        (root / "tao-core" / f"new{i}.txt").write_text("x")
    with pytest.raises(WorkspaceError, match=r"new0.txt, new1.txt, new2.txt \(\+2 more\)"):
        Workspace.open(root).ensure_clean()


def test_ensure_writable(partial_tao_workspace):
    ws = Workspace.open(partial_tao_workspace(copy=("tao-core",)))
    ws.ensure_writable(["tao-core"])
    target = ws.package("tao-core")
    # chattr +i stops even root from creating files there (a permission bit would not).
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.raises(
            WorkspaceError, match=r"cannot write to .*nvidia_tao_core: Operation not permitted"
        ):
            ws.ensure_writable(["tao-core"])
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)


# --- layout, version, names --------------------------------------------------------------------------------


def test_vendored_layout_and_version(tao_workspace_template: Path):
    ws = Workspace.open(tao_workspace_template)
    assert ws.config_layout == "vendored"
    assert ws.tao_version == TAO_TEST_VERSION
    assert ws.repo_versions() == dict.fromkeys(REPO_NAMES, TAO_TEST_VERSION)


def make_6x_workspace(root: Path) -> Path:
    """A tiny TAO 6.x-style workspace: configs only in tao-core, version only in release/python/version.py."""
    files = {
        "tao-core/nvidia_tao_core/config/segformer/default_config.py": "",
        "tao-core/nvidia_tao_core/config/classification_pyt/default_config.py": "",
        "tao-pytorch/nvidia_tao_pytorch/cv/segformer/__init__.py": "",
        "tao-pytorch/nvidia_tao_pytorch/cv/classification_pyt/__init__.py": "",
        "tao-pytorch/release/python/version.py": 'MAJOR = "6"\nMINOR = "26"\nPATCH = "3"\nPRE_RELEASE = ""\n',
        "tao-pytorch/setup.py": (
            "import setuptools\n\nsetuptools.setup(\n    name='nvidia-tao-pytorch',\n    entry_points={\n"
            "        'console_scripts': [\n"
            "            # CV entry points\n"
            "            'segformer=nvidia_tao_pytorch.cv.segformer.entrypoint.segformer:main',\n"
            "            'classification_pyt=nvidia_tao_pytorch.cv.classification_pyt.entrypoint.classification:main',\n"
            "        ]\n    },\n)\n"
        ),
        "tao-deploy/nvidia_tao_deploy/cv/segformer/__init__.py": "",
        "tao-deploy/setup.py": (
            "import setuptools\n\nSCRIPTS = ['segformer=nvidia_tao_deploy.cv.segformer.entrypoint.segformer:main',\n"
            "           'unet = nvidia_tao_deploy.cv.unet.entrypoint.unet:main']\n"
            "setuptools.setup(entry_points=dict(console_scripts=SCRIPTS))\n"
        ),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name in REPO_NAMES:
        git(root / name, "init", "-q")
    return root


def test_core_layout_synthetic_6x(tmp_path: Path):
    ws = Workspace.open(make_6x_workspace(tmp_path / "ws6"))
    assert ws.config_layout == "core"
    assert ws.tao_version == "6.26.3"
    assert ws.backbone_names() == []
    taken = ws.existing_networks()
    assert taken["segformer"] == "tao-pytorch/nvidia_tao_pytorch/cv/segformer"
    assert taken["classification_pyt"] == "tao-pytorch/nvidia_tao_pytorch/cv/classification_pyt"
    assert taken["unet"] == "tao-deploy/setup.py console_scripts"
    assert ws.console_scripts("tao-deploy")[1] == "unet = nvidia_tao_deploy.cv.unet.entrypoint.unet:main"


def test_existing_networks_7_3(tao_workspace_template: Path):
    ws = Workspace.open(tao_workspace_template)
    taken = ws.existing_networks()
    assert taken["classification_pyt"] == "tao-pytorch/nvidia_tao_pytorch/cv/classification_pyt"
    assert taken["segformer"] == "tao-pytorch/nvidia_tao_pytorch/cv/segformer"
    assert taken["dinov3"] == "tao-pytorch/nvidia_tao_pytorch/ssl/dinov3"
    assert taken["pointpillars"] == "tao-pytorch/nvidia_tao_pytorch/pointcloud/pointpillars"
    assert taken["classification_pyt_mmlab"] == "tao-core/nvidia_tao_core/config/classification_pyt_mmlab"
    assert taken["ssl_evaluation"] == "tao-pytorch/nvidia_tao_pytorch/config/ssl_evaluation"
    assert taken["yolo_v4_tiny"] == "tao-deploy/setup.py console_scripts"
    for name in ("tao-pytorch", "tao-deploy"):
        for entry in ws.console_scripts(name):
            assert entry.split("=", 1)[0] in taken
    assert "__pycache__" not in taken and "backbone_v2" in taken


def test_backbone_names_7_3(tao_workspace_template: Path):
    ws = Workspace.open(tao_workspace_template)
    names = ws.backbone_names()
    assert len(names) == 125 == len(set(names))
    assert {"convnext_tiny", "vit_large_codetr", "c_radio_v4_vit_so400m_patch16", "sam3_default"} <= set(
        names
    )
    assert ws.backbones()["convnext_tiny"] == "convnext.py:49"  # same file:line as the coverage reference


def test_parse_console_scripts_forms():
    upstream_style = (
        "import setuptools\nsetuptools.setup(\n    entry_points={\n        'console_scripts': [\n"
        "            # comment\n            'a=pkg.a:main',\n            'b = pkg.b:main',\n        ]\n    }\n)\n"
    )
    assert parse_console_scripts(upstream_style) == ["a=pkg.a:main", "b = pkg.b:main"]
    variable = "from setuptools import setup\nEP = {'console_scripts': ['x=y:z']}\nsetup(entry_points=EP)\n"
    assert parse_console_scripts(variable) == ["x=y:z"]
    assert parse_console_scripts("from setuptools import setup\nsetup(name='x')\n") == []
    with pytest.raises(WorkspaceError, match=r"cannot parse setup.py \(line 1\)"):
        parse_console_scripts("setup(\n")


def test_strip_compiled_keeps_python_files_and_is_reproducible(tmp_path: Path):
    """tao_wheels.strip_compiled (scripts/gpu-wheels.sh): no .so, the rest byte-identical, RECORD without the .so rows."""
    src = tmp_path / "src" / "pkg-1.0-cp312-cp312-manylinux1_x86_64.whl"
    src.parent.mkdir()
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("pkg/__init__.py", date_time=(2026, 10, 14, 2, 10, 0)), "x = 1\n")
        zf.writestr(zipfile.ZipInfo("pkg/ops/op.cpython-312-x86_64-linux-gnu.so", date_time=(2026, 10, 14, 2, 55, 0)),
                    b"\x7fELF" + b"\0" * 4096)
        zf.writestr("pkg-1.0.dist-info/METADATA", "Name: pkg\nVersion: 1.0\n")
        zf.writestr("pkg-1.0.dist-info/RECORD", "pkg/__init__.py,sha256=a,6\n"
                    "pkg/ops/op.cpython-312-x86_64-linux-gnu.so,sha256=b,4100\npkg-1.0.dist-info/RECORD,,\n")
    one = tao_wheels.strip_compiled(src, tmp_path / "a")
    two = tao_wheels.strip_compiled(src, tmp_path / "b")
    assert one.name == src.name and one.read_bytes() == two.read_bytes()
    with zipfile.ZipFile(one) as zf:
        assert zf.namelist() == ["pkg/__init__.py", "pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/RECORD"]
        assert zf.read("pkg/__init__.py") == b"x = 1\n"
        assert zf.getinfo("pkg/__init__.py").date_time == (2026, 10, 14, 2, 10, 0)
        assert ".so" not in zf.read("pkg-1.0.dist-info/RECORD").decode()
    assert tao_wheels.skipped_members(one) == [] and len(tao_wheels.wheel_members(one)) == 1
    with pytest.raises(ValueError, match="overwrite"):
        tao_wheels.strip_compiled(one, one.parent)
