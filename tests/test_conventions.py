"""A port in a workspace of real clones: the repos' conventions (license header, supported-commands tables, no
machine paths, the workspace's version) and a verify/doctor that blame the environment, not the port.

The clones are modelled on the session's TAO 7.3.0 workspace plus what the public GitHub repositories have and the
wheels lack (measured in ../shared/reference/tao-real-clones.md): tao-deploy's docs generator and its
``docs/supported_commands.md``, tao-pytorch's README supported-commands block, tao-deploy's nested ``tao-core``
submodule, versions that live only in git (a 6.26.3 tao-core under 7.0.1/7.1.0 tao-pytorch/tao-deploy), and a
copyright line newer than the default. One port (DeiT-base: a generated, registered backbone_v2 module) is
generated into it without weights; nothing trains.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from scaffolder.layout import DEFAULT_COPYRIGHT, answers_relpath
from tests.test_generate import call_main

NAME = "deit_conv"
COPYRIGHT = "SPDX-FileCopyrightText: Copyright (c) 2027 NVIDIA CORPORATION & AFFILIATES. All rights reserved."
GIT_ID = ["-c", "user.name=tao-scaffold-test", "-c", "user.email=test@noreply.invalid"]
MISSING_PACKAGE = "tao_scaffold_test_server_package"  # installed nowhere

# Behaves as tao-deploy's tools/update_docs_supported_commands.py (NVIDIA-TAO/tao-deploy f353ae7, measured): rows
# `| `name` | domain | `implementation` | subtasks |` sorted by command between the BEGIN/END GENERATED markers, from
# setup.py's console_scripts (ast + literal_eval of entry_points); the implementation is the module before
# ".entrypoint."; subtasks are the sorted scripts/*.py stems, plus default_specs when the entrypoint module mentions
# entrypoint_hydra or get_subtasks; the repo root is the script's resolved parents[1]; --check prints a diff and
# exits 1 when the file is stale. Written for this test.
DOCS_TOOL = r'''
import argparse, ast, difflib, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "supported_commands.md"
BEGIN, END = "<!-- BEGIN GENERATED: supported-commands -->", "<!-- END GENERATED: supported-commands -->"


def console_scripts():
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "entry_points":
                    return ast.literal_eval(keyword.value)["console_scripts"]
    raise SystemExit("setup.py has no console_scripts")


def row(spec):
    name, target = spec.split("=", 1)
    module = target.split(":", 1)[0]
    parts = module.split(".")
    domain = "multimodal" if "multimodal" in parts else "cv" if "cv" in parts else "common"
    impl = module.split(".entrypoint.", 1)[0] if ".entrypoint." in module else module.rsplit(".", 1)[0]
    scripts = ROOT.joinpath(*impl.split("."), "scripts")
    subtasks = sorted(p.stem for p in scripts.glob("*.py") if p.stem != "__init__") if scripts.exists() else []
    source = ROOT.joinpath(*parts).with_suffix(".py")
    text = source.read_text(encoding="utf-8") if source.exists() else ""
    if "entrypoint_hydra" in text or "get_subtasks" in text:
        subtasks.append("default_specs")
    return name, f"| `{name}` | {domain} | `{impl}` | {', '.join(subtasks) or 'see ' + name + ' entrypoint'} |"


def desired():
    rows = [text for _, text in sorted(map(row, console_scripts()))]
    block = "\n".join([BEGIN, "", "| Command | Domain | Implementation | Discovered subtasks |",
                       "| :--- | :--- | :--- | :--- |", *rows, "", END])
    if not TARGET.exists():
        return "# Supported Deploy Commands\n\n" + block + "\n"
    before, rest = TARGET.read_text(encoding="utf-8").split(BEGIN, 1)
    return before + block + rest.split(END, 1)[1]


parser = argparse.ArgumentParser()
parser.add_argument("--check", action="store_true")
check = parser.parse_args().check
want, have = desired(), TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
if check:
    if want != have:
        print("\n".join(difflib.unified_diff(have.splitlines(), want.splitlines(), lineterm="")))
        sys.exit(1)
    print("docs/supported_commands.md is up to date.")
else:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(want, encoding="utf-8")
'''

# tao-pytorch README.md's generated block (NVIDIA-TAO/tao-pytorch d99ff77, README.md lines 60-119, shortened): a
# domain table and a command table, both sorted by command.
README_BLOCK = """## Supported Commands

<!-- BEGIN GENERATED: supported-commands -->

| Domain | Commands |
| :--- | :--- |
| Computer vision | `classification_pyt`, `rtdetr`, `segformer` |
| Multimodal | `clip`, `radio` |

| Command | Package | Subtasks |
| :--- | :--- | :--- |
| `classification_pyt` | `cv.classification_pyt` | `default_specs`, `evaluate`, `export`, `inference`, `train` |
| `clip` | `multimodal.clip` | `default_specs`, `evaluate`, `export`, `inference`, `train` |
| `segformer` | `cv.segformer` | `default_specs`, `evaluate`, `export`, `inference`, `train` |

<!-- END GENERATED: supported-commands -->
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_ID, "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def license_header_ok(path: Path) -> bool:
    """tao-deploy .github/hooks/check_license_header.py (f353ae7) has_license_header: the first 10 lines hold
    "SPDX-License-Identifier:" and one of "SPDX-FileCopyrightText:" / "Copyright"."""
    with open(path, encoding="utf-8", errors="ignore") as handle:
        head = "".join(next(handle, "") for _ in range(10))
    return "SPDX-License-Identifier:" in head and ("SPDX-FileCopyrightText:" in head or "Copyright" in head)


def make_clones(template: Path, root: Path) -> Path:
    """The 7.3.0 workspace made to look like the public clones (module docstring); every repo committed clean."""
    ws = root / "ws"
    shutil.copytree(template, ws, symlinks=True)
    for repo in ("tao-core", "tao-pytorch", "tao-deploy"):
        readme = ws / repo / "README.md"  # versions come from git: no wheel marker
        readme.write_text(f"# {repo}\n" + (f"\n{README_BLOCK}" if repo == "tao-pytorch" else ""), encoding="utf-8")
    deploy = ws / "tao-deploy"
    (deploy / "tools").mkdir()
    (deploy / "tools" / "update_docs_supported_commands.py").write_text(DOCS_TOOL, encoding="utf-8")
    subprocess.run([sys.executable, "tools/update_docs_supported_commands.py"], cwd=deploy, check=True)
    (deploy / ".gitmodules").write_text(  # tao-deploy .gitmodules (f353ae7); the submodule is not initialised
        '[submodule "tao-core"]\n\tpath = tao-core\n\turl = https://github.com/NVIDIA-TAO/tao-core.git\n'
        "\tbranch = main\n", encoding="utf-8")
    (deploy / "nvidia_tao_deploy" / "newest.py").write_text(f"# {COPYRIGHT}\n# SPDX-License-Identifier: Apache-2.0\n")
    subjects = {"tao-core": "Merge pull request #15 from NVIDIA/release/6.26.3", "tao-pytorch": "Release/7.0.1",
                "tao-deploy": "docs: supported commands"}
    for repo, subject in subjects.items():
        git(ws / repo, "add", "-A")
        git(ws / repo, "commit", "-q", "-m", subject)
    git(deploy, "tag", "7.1.0")
    return ws


@pytest.fixture(scope="module")
def clones(tao_workspace_template: Path, tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("clones")
    ws = make_clones(tao_workspace_template, root)
    model = root / "models" / "deit-base-distilled"  # facebook/deit-base-distilled-patch16-224's geometry
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({
        "model_type": "deit", "architectures": ["DeiTForImageClassificationWithTeacher"], "hidden_size": 768,
        "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "image_size": 224,
        "patch_size": 16, "num_channels": 3, "id2label": {"0": "cat", "1": "dog"}, "label2id": {"cat": 0, "dog": 1}}))
    rc, out, err = call_main("generate", "--model", str(model), "--name", NAME, "--workspace", str(ws), "--no-weights")
    assert rc == 0, err
    return SimpleNamespace(ws=ws, root=root, model=model, out=out)


def generated(ws: Path) -> list[Path]:
    """Every file the port wrote or changed (what a commit of it would hold)."""
    files = []
    for repo in ("tao-core", "tao-pytorch", "tao-deploy"):
        status = git(ws / repo, "status", "--porcelain", "--untracked-files=all")
        files += [ws / repo / line[3:] for line in status.splitlines()]
    return files


# -- part 3: the repos' conventions ----------------------------------------------------------------------------
def test_headers_carry_the_workspaces_copyright_line_and_pass_the_license_hook(clones):
    python = [p for p in generated(clones.ws) if p.suffix == ".py" and "setup.py" not in p.name]
    assert len(python) > 30 and any(p.name == "backbone_v2" or "backbone_v2" in p.parts for p in python)
    failing = [str(p) for p in python if not license_header_ok(p)]
    assert not failing, failing
    ours = [p for p in python if p.name != "__init__.py" or NAME in p.parts]
    assert all(p.read_text().startswith(f"# {COPYRIGHT}\n# SPDX-License-Identifier: Apache-2.0\n") for p in ours)


def test_docs_generator_ran_and_its_check_passes(clones):
    deploy = clones.ws / "tao-deploy"
    table = (deploy / "docs" / "supported_commands.md").read_text()
    assert (f"| `{NAME}` | cv | `nvidia_tao_deploy.cv.{NAME}` | evaluate, gen_trt_engine, inference, default_specs |"
            in table)
    assert f"registry  tao-deploy/docs/supported_commands.md: supported commands += {NAME}" in clones.out
    check = subprocess.run([sys.executable, "tools/update_docs_supported_commands.py", "--check"], cwd=deploy,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_readme_supported_commands_rows(clones):
    text = (clones.ws / "tao-pytorch" / "README.md").read_text()
    assert f"| Computer vision | `classification_pyt`, `{NAME}`, `rtdetr`, `segformer` |" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == ["classification_pyt", "clip", NAME, "segformer"]
    assert f"| `{NAME}` | `cv.{NAME}` | `default_specs`, `evaluate`, `export`, `inference`, `train` |" in rows

    from scaffolder.patches.command_docs import _readme_with_port

    again = clones.root / "README.md"
    again.write_text(text)
    assert _readme_with_port(again, NAME, ["default_specs", "train"]).count(f"| `{NAME}` |") == 1  # replaced


def test_no_machine_path_in_any_generated_file(clones):
    paths = {str(clones.root), str(clones.model.resolve()), str(Path(__file__).resolve().parents[1]), str(Path.home())}
    for path in generated(clones.ws):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not [p for p in paths if p in text], path
    answers = yaml.safe_load((clones.ws / answers_relpath(NAME)).read_text())
    assert "_src_path" not in answers and answers["model"] == "deit-base-distilled"
    assert answers["tao_version"] == "7.0.1" and answers["copyright"] == COPYRIGHT
    config = (clones.ws / "tao-core" / "nvidia_tao_core" / "config" / NAME / "default_config.py").read_text()
    assert 'SOURCE_MODEL = "deit-base-distilled"' in config
    # the folder is remembered outside the repos, for verify's hf_parity on this machine
    assert json.loads((clones.ws / ".tao-scaffold-models.json").read_text()) == {NAME: str(clones.model.resolve())}


def test_hf_parity_finds_the_model_from_the_record_or_from_verify_model(clones, tmp_path):
    from scaffolder.verify.context import Options
    from scaffolder.verify.port import load_port
    from scaffolder.verify.stages.weights import _hf_config

    port = load_port(clones.ws, NAME)
    assert _hf_config(SimpleNamespace(port=port, options=Options())) == clones.model / "config.json"
    moved = shutil.copytree(clones.model, tmp_path / "elsewhere")
    assert _hf_config(SimpleNamespace(port=port, options=Options(model=str(moved)))) == moved / "config.json"
    port.workspace.root = tmp_path  # another machine: no record, no folder of that name here
    assert _hf_config(SimpleNamespace(port=port, options=Options())) is None


def test_plan_takes_the_workspace_copyright_unless_given(clones):
    from scaffolder.cli import _workspace_facts, build_parser
    from scaffolder.plan import PlanFieldError, PortPlan

    args = build_parser().parse_args(["inspect", "m", "--workspace", str(clones.ws)])
    assert _workspace_facts(args) == {"config_layout": "vendored", "tao_version": "7.0.1", "copyright": COPYRIGHT}
    args = build_parser().parse_args(["generate", "--plan", "p.yml", "--workspace", str(clones.ws), "--copyright", ""])
    assert _workspace_facts(args)["copyright"] == ""  # none: the header keeps only the license line
    assert PortPlan(name="x_port", task="classification", backbone="vit_base_patch16", copyright="").copyright == ""
    with pytest.raises(PlanFieldError, match="port plan field copyright"):
        PortPlan(name="x_port", task="classification", backbone="vit_base_patch16", copyright="# two\nlines")


# -- part 4: doctor and verify blame the right thing ----------------------------------------------------------
def test_doctor_reports_git_versions_the_mix_and_the_nested_tao_core(clones):
    from scaffolder.doctor import run_checks

    checks = {c.name: c for c in run_checks(clones.ws, machine=False)}
    versions = checks["workspace versions"]
    assert not versions.ok and versions.required and "mixes TAO 6.26, 7.0, 7.1" in versions.detail
    assert "tao-core 6.26.3 (commit" in versions.detail and "tao-deploy 7.1.0 (tag 7.1.0)" in versions.detail
    assert "tao-pytorch 7.0.1 (commit" in versions.detail
    nested = checks["workspace submodules"]
    assert not nested.ok and not nested.required
    assert "tao-deploy/tao-core (not initialised)" in nested.detail and "PYTHONPATH=" in nested.detail
    assert checks["workspace imports"].ok


def test_static_and_imports_cover_the_generated_backbone(clones):
    from scaffolder.verify.port import load_port

    port = load_port(clones.ws, NAME)
    backbone = port.answers["backbone"]
    files = {port.rel(p) for p in port.python_files()}
    assert {f"tao-pytorch/nvidia_tao_pytorch/cv/backbone_v2/{backbone}.py",
            "tao-pytorch/nvidia_tao_pytorch/cv/backbone_v2/__init__.py"} <= files
    assert [port.rel(p) for p in port.patched_files] == ["tao-pytorch/nvidia_tao_pytorch/cv/backbone_v2/__init__.py"]
    modules = port.modules("tao-pytorch")
    assert {f"nvidia_tao_pytorch.cv.backbone_v2.{backbone}", "nvidia_tao_pytorch.cv.backbone_v2"} <= set(modules)


def test_imports_stage_blames_an_environment_where_taos_own_module_fails(clones, tmp_path):
    """Mirrors a 6.x tao-core whose package import pulls in server packages this environment lacks (6.26.3's
    eager loggers/api_logging -> microservices.handlers chain: orjson, pynvml, ...)."""
    init = clones.ws / "tao-core" / "nvidia_tao_core" / "__init__.py"
    original = init.read_bytes()
    init.write_bytes(original + f"\nimport {MISSING_PACKAGE}  # noqa\n".encode())
    try:
        rc, _, err = call_main("-q", "verify", "--workspace", str(clones.ws), "--name", NAME, "--device", "cpu",
                               "--stages", "consistency,imports", "--report", str(tmp_path / "report"))
    finally:
        init.write_bytes(original)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    imports = next(s for s in report["stages"] if s["name"] == "imports")
    assert rc == 1 and imports["status"] == "skipped" and imports["required"], imports
    assert imports["reason"].startswith(
        "environment problem, not a port failure: TAO's own nvidia_tao_core.config.classification_pyt.default_config "
        f"(tao-pytorch) does not import here: ModuleNotFoundError: No module named '{MISSING_PACKAGE}'"), imports
    assert MISSING_PACKAGE in imports["reason"] and "pip install -r tao-core/requirements.txt" in imports["reason"]
    assert "--runner docker" in imports["reason"] and imports["metrics"]["environment_missing"] == [MISSING_PACKAGE]
    log = (tmp_path / "report" / imports["log"]).read_text()
    backbone = yaml.safe_load((clones.ws / answers_relpath(NAME)).read_text())["backbone"]
    for module in (f"nvidia_tao_pytorch.cv.backbone_v2.{backbone}", "nvidia_tao_pytorch.cv.backbone_v2"):
        assert re.search(rf"^import {re.escape(module)}( \(with .*\))?: (ok|stubbed)$", log, re.M), log[-3000:]


def test_port_failure_is_still_the_ports_when_tao_imports_with_the_same_stubs():
    from scaffolder.verify.stages.base import StageSkipped
    from scaffolder.verify.stages.checks import ImportsStage, environment_problem

    base = {"module": "nvidia_tao_deploy.cv.classification_pyt.entrypoint.classification_pyt", "status": "stubbed",
            "missing": ["pycuda", "orjson"], "errors": {"pycuda": "No module named 'pycuda'",
                                                         "orjson": "No module named 'orjson'"}}
    problem = environment_problem("tao-deploy", base, trt_available=False)
    assert problem["missing"] == ["orjson"] and problem["error"] == "No module named 'orjson'"
    assert problem["imports_with_stubs"]  # no TensorRT explains pycuda: not the environment's fault
    assert environment_problem("tao-deploy", {**base, "missing": ["pycuda", "ngcbase"]}, trt_available=False) is None
    assert environment_problem("tao-pytorch", {**base, "missing": ["pycuda"]}, trt_available=False)["missing"]
    ctx = SimpleNamespace(runner=SimpleNamespace(python="/usr/bin/python3"))
    run = SimpleNamespace(messages=["nvidia_tao_pytorch.cv.x.model.build: NameError: name 'y' is not defined"],
                          warnings=[], metrics={})
    ImportsStage._blame_environment(ctx, run, [problem])
    assert run.messages and run.warnings[0].startswith("environment problem")  # the port's own error stands
    failed = {**problem, "imports_with_stubs": False}
    with pytest.raises(StageSkipped, match="fails even with stubs|environment problem"):
        ImportsStage._blame_environment(ctx, run, [failed])
    assert not run.messages and any(w.startswith("not conclusive") for w in run.warnings)


def test_default_copyright_is_the_73_wheels_line(tao_workspace_template):
    from scaffolder.workspace import Workspace

    assert Workspace(tao_workspace_template).copyright == DEFAULT_COPYRIGHT
