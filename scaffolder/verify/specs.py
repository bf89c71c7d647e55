"""Reading experiment specs and generated Python sources without importing TAO.

* :func:`load_yaml` / :func:`get` read a spec and look up dotted keys (``dataset.augmentation.mean``).
* :func:`resolve` expands OmegaConf-style ``${a.b}`` interpolations the way OmegaConf does at access
  time, against the same document, optionally with some keys replaced first -- which is how
  :func:`tao_runtime_view` reproduces TAO's ``update_results_dir`` (a subtask sees
  ``results_dir = <results_dir>/<subtask dir>`` and every ``${results_dir}`` follows it).
* :func:`module_constant` / :func:`class_attribute` read literal assignments from a source file with ``ast``.
"""

from __future__ import annotations

import ast
import copy
import posixpath
import re
from pathlib import Path
from typing import Any

import yaml

MISSING = object()
_INTERPOLATION = re.compile(r"\$\{([^${}]+)\}")

# The results sub-folder each TAO subtask writes to when only the global results_dir is set
# (nvidia_tao_pytorch.core.utilities.update_results_dir / nvidia_tao_deploy.cv.common.utils.TASKS).
PYTORCH_TASK_DIRS = {"train": "train", "evaluate": "evaluate", "inference": "inference", "export": "export"}
DEPLOY_TASK_DIRS = {"gen_trt_engine": "gen_trt_engine", "evaluate": "trt_evaluate", "inference": "trt_inference"}


class SpecError(Exception):
    pass


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"{path} is not a YAML mapping")
    return data


def get(doc: dict[str, Any], key: str, default: Any = MISSING) -> Any:
    node: Any = doc
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return default
    return node


def set_key(doc: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def resolve(doc: dict[str, Any], key: str, *, _depth: int = 0) -> Any:
    """The value at ``key`` with ``${...}`` interpolations expanded (unresolvable ones are kept as text)."""
    value = get(doc, key)
    return _expand(doc, value, _depth)


def _expand(doc: dict[str, Any], value: Any, depth: int) -> Any:
    if depth > 20 or not isinstance(value, str):
        return value
    whole = _INTERPOLATION.fullmatch(value)
    if whole and ":" not in whole.group(1):
        target = get(doc, whole.group(1).strip())
        return value if target is MISSING else _expand(doc, target, depth + 1)

    def substitute(match: re.Match) -> str:
        ref = match.group(1).strip()
        if ":" in ref:  # a resolver such as ${eval:...}: not ours to evaluate
            return match.group(0)
        target = get(doc, ref)
        if target is MISSING or isinstance(target, (dict, list)):
            return match.group(0)
        return str(_expand(doc, target, depth + 1))

    return _INTERPOLATION.sub(substitute, value)


def with_overrides(doc: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for key, value in overrides.items():
        set_key(out, key, value)
    return out


def tao_runtime_view(doc: dict[str, Any], subtask: str, task_dirs: dict[str, str]) -> dict[str, Any]:
    """The spec as TAO's ``update_results_dir`` leaves it for ``subtask`` (lazy interpolation included)."""
    results_dir = get(doc, "results_dir", None)
    own = get(doc, f"{subtask}.results_dir", None)
    overrides: dict[str, Any] = {}
    if own:
        overrides["results_dir"] = _expand(doc, own, 0)
    elif results_dir:
        overrides["results_dir"] = posixpath.join(str(_expand(doc, results_dir, 0)), task_dirs[subtask])
    return with_overrides(doc, overrides)


def normpath(value: Any) -> Any:
    return posixpath.normpath(value) if isinstance(value, str) and value else value


# -- python sources --------------------------------------------------------------------------------------
def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def module_constant(path: Path, name: str, default: Any = MISSING) -> Any:
    """The literal value of a module-level ``NAME = <literal>`` in ``path`` (``default`` if absent/non-literal)."""
    tree = _parse(path)
    if tree is None:
        return default
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id == name:
                try:
                    return ast.literal_eval(value)
                except ValueError:
                    return default
    return default


def class_attribute(path: Path, attribute: str) -> dict[str, Any]:
    """``{class name: literal}`` for every class in ``path`` that assigns ``attribute`` (class body or
    ``self.attribute = <literal>`` in a method)."""
    tree = _parse(path)
    found: dict[str, Any] = {}
    if tree is None:
        return found
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for node in ast.walk(cls):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                is_attr = (isinstance(target, ast.Name) and target.id == attribute) or (
                    isinstance(target, ast.Attribute)
                    and target.attr == attribute
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                )
                if not is_attr:
                    continue
                try:
                    found[cls.name] = ast.literal_eval(node.value)
                except ValueError:
                    # `self.checkpoint_filename = self.checkpoint_name`: follow one class-level name
                    if isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Name):
                        for inner in cls.body:
                            if isinstance(inner, ast.Assign) and any(
                                isinstance(t, ast.Name) and t.id == node.value.attr for t in inner.targets
                            ):
                                try:
                                    found[cls.name] = ast.literal_eval(inner.value)
                                except ValueError:
                                    pass
    return found


def defines_function(path: Path, name: str) -> bool:
    tree = _parse(path)
    return tree is not None and any(
        isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in tree.body
    )
