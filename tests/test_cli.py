"""The `tao-scaffold` command line: help texts, the error format, and bad input to `generate`.

Every bad input must give one ``tao-scaffold: error: ...`` line on stderr, exit 2 and leave the workspace
byte-identical (every file hashed, ``.git`` included, plus ``git status``). Most cases call
``scaffolder.cli.main`` in this process (the same code the console script runs, without paying the
transformers/torch imports again per case); the ``*_console_script`` tests run the installed
``tao-scaffold`` in a fresh process to pin the real exit code and streams.

Hub ids are resolved offline: ``populate_hub_cache`` lays model folders out as huggingface_hub's cache, used
with ``--offline --cache-dir``; "unreachable" points HF_ENDPOINT at a closed local port.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from tests.model_factory import make_model_dir, populate_hub_cache
from tests.test_generate import (  # noqa: F401 -- clean_workspace is a fixture
    EXAMPLE,
    _PROGRESS,
    assert_unchanged,
    call_main,
    clean_workspace,
    error_line,
    run_cli,
    snapshot,
)


# -- help ----------------------------------------------------------------------------------------------------


def _options(argv: list[str]) -> list[str]:
    """Every option string of the (sub)parser ``argv`` selects, from the parser itself."""
    from scaffolder.cli import build_parser

    parser = build_parser()
    for word in argv:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[word]
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]


@pytest.mark.parametrize("argv,required", [
    ([], ["--version", "--quiet"]),
    (["inspect"], ["--task", "--name", "--num-classes", "--out", "--revision", "--cache-dir", "--offline"]),
    (["generate"], ["--model", "--plan", "--name", "--workspace", "--task", "--num-classes", "--dry-run",
                    "--allow-dirty", "--revision", "--cache-dir", "--offline"]),
    (["update"], ["--name", "--workspace", "--dry-run"]),
    (["workspace", "init"], ["--from-pypi", "--wheel-cache"]),
    (["doctor"], ["--workspace"]),
])
def test_help_mentions_every_flag(argv: list[str], required: list[str]):
    rc, out, err = call_main(*argv, "--help")
    assert rc == 0 and err == ""
    options = _options(argv)
    assert set(required) <= set(options)
    missing = [o for o in options if o not in out]
    assert not missing, f"`tao-scaffold {' '.join(argv)} --help` does not mention {missing}"


def test_help_of_the_console_script():
    proc = run_cli("generate", "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: tao-scaffold generate")
    for flag in ("--model", "--name", "--workspace", "--dry-run", "--num-classes", "--task"):
        assert flag in proc.stdout


# -- the error format ----------------------------------------------------------------------------------------


def test_usage_error_is_one_line_exit_2_console_script():
    proc = run_cli("generate", "--model", str(EXAMPLE), "--name", "x_port")  # no --workspace
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "tao-scaffold: error: the following arguments are required: --workspace -- see `tao-scaffold generate --help`"
    ]


@pytest.mark.parametrize("argv,message", [
    (["bogus"], "argument COMMAND: invalid choice: 'bogus'"),
    (["generate", "--workspace", "ws", "--num-classes", "0"], "argument --num-classes: must be at least 1, not 0"),
    (["generate", "--workspace", "ws", "--num-classes", "ten"], "argument --num-classes: invalid int value: 'ten'"),
    (["inspect"], "the following arguments are required: MODEL"),
    (["workspace", "init", "ws"], "the following arguments are required: --from-pypi"),
])
def test_usage_errors_are_one_line(argv: list[str], message: str):
    rc, out, err = call_main(*argv)
    assert rc == 2 and out == ""
    assert message in error_line(err)


def test_scaffold_error_is_one_line_exit_2_console_script(clean_workspace: Path):
    """An error after progress lines: every other stderr line is progress, the error is the last one."""
    before = snapshot(clean_workspace)
    proc = run_cli("generate", "--model", "/nonexistent/model-folder", "--name", "x_port",
                   "--workspace", str(clean_workspace))
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) >= 2 and all(_PROGRESS.match(line) for line in lines[:-1]), lines
    assert lines[-1] == error_line(proc.stderr)
    assert "local folder /nonexistent/model-folder does not exist" in lines[-1]
    assert_unchanged(clean_workspace, before)


def test_generate_needs_a_model_or_a_plan(clean_workspace: Path):
    rc, out, err = call_main("generate", "--workspace", str(clean_workspace), "--name", "x_port")
    assert rc == 2
    assert error_line(err) == "tao-scaffold: error: generate needs --model and --name, or --plan port.yml"


# -- bad input to generate: one line, exit 2, workspace byte-identical -----------------------------------------


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory) -> Path:
    """An HF cache holding config-only snapshots of facebook/dinov2-base and bert-base-uncased."""
    cache = tmp_path_factory.mktemp("hf-cache")
    src = tmp_path_factory.mktemp("hf-src")
    dinov2 = make_model_dir(src / "dinov2-base", "dinov2", full_size=True, weights=False)
    config = json.loads((dinov2 / "config.json").read_text())  # dinov2-small geometry -> dinov2-base
    config.update(hidden_size=768, num_attention_heads=12, num_hidden_layers=12)
    (dinov2 / "config.json").write_text(json.dumps(config, indent=2))
    populate_hub_cache(cache, "facebook/dinov2-base", dinov2)
    populate_hub_cache(cache, "bert-base-uncased", make_model_dir(src / "bert", "bert", weights=False))
    return cache


def generate_error(workspace: Path, *args: str) -> str:
    """Run generate with ``args``; assert exit 2, nothing on stdout, one error line and no change; return the line."""
    before = snapshot(workspace)
    rc, out, err = call_main("-q", "generate", "--workspace", str(workspace), *args)
    assert rc == 2 and out == "", (rc, out, err)
    line = error_line(err)
    assert_unchanged(workspace, before)
    return line


def test_unknown_model_offline(clean_workspace: Path, tmp_path: Path):
    line = generate_error(clean_workspace, "--model", "no-such-org/no-such-model", "--name", "x_port",
                          "--offline", "--cache-dir", str(tmp_path))
    assert "no-such-org/no-such-model is not in the cache in" in line and "the Hub is offline" in line
    assert "pass a local folder instead (--model ./path/with/config.json)" in line


def test_unreachable_hub(clean_workspace: Path, tmp_path: Path, monkeypatch):
    with socket.socket() as sock:  # a local port nobody listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    line = generate_error(clean_workspace, "--model", "no-such-org/no-such-model", "--name", "x_port",
                          "--cache-dir", str(tmp_path))
    assert f"cannot reach the Hugging Face Hub at http://127.0.0.1:{port}" in line
    assert "work offline: pass a local folder instead (--model ./path/with/config.json)" in line


def test_missing_local_folder(clean_workspace: Path):
    line = generate_error(clean_workspace, "--model", "./no/such/folder", "--name", "x_port")
    assert "local folder ./no/such/folder does not exist" in line


def test_non_cv_model_names_its_architecture_and_pipeline_tag(clean_workspace: Path, hub_cache: Path):
    line = generate_error(clean_workspace, "--model", "bert-base-uncased", "--name", "x_port",
                          "--offline", "--cache-dir", str(hub_cache))
    assert "bert-base-uncased is not a computer-vision model" in line
    assert "BertForMaskedLM" in line and "pipeline tag 'fill-mask'" in line


def test_malformed_config_json(clean_workspace: Path, tmp_path: Path):
    model = make_model_dir(tmp_path / "model", "vit", full_size=True, weights=False)
    (model / "config.json").write_text('{"model_type": "vit", "hidden_size": 768,\n')
    line = generate_error(clean_workspace, "--model", str(model), "--name", "x_port")
    assert f"{model / 'config.json'} is not valid JSON" in line


def test_corrupt_safetensors_header(clean_workspace: Path, tmp_path: Path):
    model = make_model_dir(tmp_path / "model", "vit", full_size=True, weights=False)
    (model / "model.safetensors").write_bytes(b"\x20\x00\x00\x00\x00\x00\x00\x00{not a json header}" + b"\0" * 64)
    line = generate_error(clean_workspace, "--model", str(model), "--name", "x_port")
    assert f"{model / 'model.safetensors'} has a corrupt safetensors header" in line
    assert "download the file again" in line


@pytest.mark.parametrize("name,problem", [
    ("1vit", "is not a snake_case identifier"),
    ("Vit_Port", "is not a snake_case identifier"),
    ("vit-port", "is not a snake_case identifier"),
    ("vit__port", "is not a snake_case identifier"),
    ("vit_port_", "is not a snake_case identifier"),
    ("class", "is a Python keyword"),
    ("lambda", "is a Python keyword"),
    ("match", "is a Python keyword"),  # soft keyword
])
def test_bad_port_names(clean_workspace: Path, name: str, problem: str):
    line = generate_error(clean_workspace, "--model", str(EXAMPLE), "--name", name)
    assert line.startswith(f"tao-scaffold: error: port name {name!r} {problem}")


def test_keyword_name_hint_suggests_a_name(clean_workspace: Path):
    line = generate_error(clean_workspace, "--model", str(EXAMPLE), "--name", "class")
    assert "class_net" in line


def test_feature_extraction_model_needs_task(clean_workspace: Path, hub_cache: Path):
    line = generate_error(clean_workspace, "--model", "facebook/dinov2-base", "--name", "dino_port",
                          "--offline", "--cache-dir", str(hub_cache))
    assert "facebook/dinov2-base is a feature-extraction model (Dinov2Model)" in line
    assert "pass --task classification" in line


def test_feature_extraction_model_with_task(clean_workspace: Path, hub_cache: Path, tmp_path: Path):
    """With --task classification the catalog decides: TAO 7.3 registers no plain-MLP DINOv2-base backbone,
    so either the catalog has a generated-backbone variant for it (then generate must work), or the error
    must say that there is no TAO backbone for it."""
    from scaffolder import catalog
    from scaffolder.hf_inspect import inspect_model

    info = inspect_model("facebook/dinov2-base", cache_dir=hub_cache, offline=True, include_weights_schema=False)
    variant = catalog.family_for("dinov2").match(info.config)
    if variant is None:
        line = generate_error(clean_workspace, "--model", "facebook/dinov2-base", "--name", "dino_port",
                              "--offline", "--cache-dir", str(hub_cache), "--task", "classification")
        assert re.search(r"no (TAO|plain-MLP) .*backbone", line, re.I), line
        assert "dinov2" in line.lower()
    else:
        from tests.test_generate import copy_workspace
        ws = copy_workspace(clean_workspace, tmp_path / "ws")
        rc, out, err = call_main("-q", "generate", "--workspace", str(ws), "--model", "facebook/dinov2-base",
                                 "--name", "dino_port", "--offline", "--cache-dir", str(hub_cache),
                                 "--task", "classification")
        assert rc == 0, err
        assert variant.backbone in out


def test_name_check_runs_before_the_model_is_read(clean_workspace: Path):
    """A bad name is reported even when the model does not exist: no model I/O first."""
    line = generate_error(clean_workspace, "--model", "no-such-org/no-such-model", "--name", "Bad-Name")
    assert "port name 'Bad-Name'" in line
