"""Contracts that keep the task registry, copier.yml, the blueprint trees, verify and PortPlan in step,
and the golden renders (scripts/check_blueprints.py) that make a blueprint change reviewable as Python."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scaffolder import catalog, layout
from scaffolder.plan import PortPlan
from scaffolder.render import BLUEPRINT_ROOT
from scaffolder.tasks import TASKS, load_object
from scaffolder.verify.tasks import TaskSupport, support_class

COPIER = yaml.safe_load((BLUEPRINT_ROOT / "copier.yml").read_text(encoding="utf-8"))
QUESTIONS = {k: v for k, v in COPIER.items() if not k.startswith("_")}


def test_registry_equals_copier_choices_blueprints_and_verify():
    blueprints = sorted(p.name for p in (BLUEPRINT_ROOT / "blueprints").iterdir()
                        if p.is_dir() and not p.name.startswith("_"))
    assert sorted(TASKS) == sorted(QUESTIONS["task"]["choices"]) == blueprints
    for name, spec in TASKS.items():
        support = support_class(name)
        assert issubclass(support, TaskSupport) and support.name == name
        assert callable(load_object(spec.tao_model_builder))
        assert (BLUEPRINT_ROOT / spec.blueprint).is_dir()


def test_plan_fields_equal_copier_questions():
    assert [f.name for f in dataclasses.fields(PortPlan)] == list(QUESTIONS)
    assert QUESTIONS["copyright"]["default"] == layout.DEFAULT_COPYRIGHT == PortPlan.copyright


def test_answers_file_and_subdirectory_are_the_layout_facts():
    assert COPIER["_subdirectory"] == "blueprints/{{ task }}"
    assert COPIER["_answers_file"] == layout.answers_relpath("{{ name }}")


def test_every_family_task_is_a_registered_task():
    for family in catalog.FAMILIES:
        assert family.tasks, f"{family.name} supports no task"
        assert set(family.tasks) <= set(TASKS), family.name


def test_each_blueprint_converter_writes_its_task_tao_model():
    for name, spec in TASKS.items():
        converter = next((BLUEPRINT_ROOT / spec.blueprint).rglob("hf_checkpoint_converter.py.jinja"))
        assert f'set tao_model = "{spec.tao_model}"' in converter.read_text(encoding="utf-8"), converter


def test_golden_renders_match():
    """scripts/check_blueprints.py --check: every example renders exactly its checked-in tree."""
    proc = subprocess.run([sys.executable, str(BLUEPRINT_ROOT / "scripts" / "check_blueprints.py"), "--check"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_golden_check_names_the_file_and_shows_the_diff(tmp_path: Path):
    """A blueprint edit fails --check with the file and the generated-Python diff; --fix would restore."""
    template = tmp_path / "tpl"
    subprocess.run(["git", "clone", "-q", str(BLUEPRINT_ROOT), str(template)], check=True)
    subprocess.run(["cp", "-r", str(BLUEPRINT_ROOT / "tests" / "golden"), str(template / "tests")], check=True)
    build = next((template / "blueprints" / "classification").rglob("model/build.py.jinja"))  # the ViT example's
    build.write_text(build.read_text(encoding="utf-8").replace("Give the norm layers", "Set the norm layers"),
                     encoding="utf-8")
    proc = subprocess.run([sys.executable, str(template / "scripts" / "check_blueprints.py"), "--check",
                           "google-vit-base-patch16-224"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    assert "model/build.py" in proc.stdout
    assert '-    """Give the norm layers' in proc.stdout and '+    """Set the norm layers' in proc.stdout
    fixed = subprocess.run([sys.executable, str(template / "scripts" / "check_blueprints.py"), "--fix",
                            "google-vit-base-patch16-224"], capture_output=True, text=True, timeout=600)
    assert fixed.returncode == 0
    again = subprocess.run([sys.executable, str(template / "scripts" / "check_blueprints.py"), "--check",
                            "google-vit-base-patch16-224"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_params_defaults_round_trip(name):
    spec = TASKS[name]
    assert spec.params_from({}) == dict(spec.params)
    with pytest.raises(Exception, match="unknown keys"):
        spec.params_from({"not_a_param": 1})
