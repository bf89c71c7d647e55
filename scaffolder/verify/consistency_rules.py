"""The cross-phase rules of the porting workflow, checked on the generated files (nothing is imported).

Each rule compares what one phase writes with what the next one reads, and every violation names the
file and the key. Rules (``check_port``):

* normalisation -- ``mean``/``std`` of the training spec == every deploy spec (effective values: a key
  missing from a spec falls back to its schema default), and the schema defaults agree across the
  tao-core config and its vendored copies;
* artifact hand-offs -- ``export.onnx_file`` == ``gen_trt_engine.onnx_file``; the deploy specs'
  ``trt_engine`` == ``gen_trt_engine.trt_engine``; the ``checkpoint`` of evaluate/inference/export is a
  ``<checkpoint_filename>_*.pth`` of the port's Lightning module. Paths are compared with ``${...}``
  resolved against one ``results_dir`` (errors), and again the way TAO resolves them at run time, where
  ``update_results_dir`` turns ``results_dir`` into ``results_dir/<subtask>`` first (warnings, or errors
  with ``strict``);
* model geometry -- ``model.head.in_channels`` == ``model_params_mapping`` for the spec's backbone, in
  every spec and mapping copy; ``export.input_width/height`` and every deploy spec's ``dataset.img_size``
  == the training ``dataset.img_size``; ``num_classes`` and the backbone agree across specs;
* ONNX names -- the export script's ``INPUT_NAMES``/``OUTPUT_NAMES`` == the plan's ``input_names``/
  ``output_names`` (the deploy side is built against the plan);
* packaging -- ``__init__.py`` in every generated package folder (and its parents), and a
  ``NAME=...:main`` console script in tao-pytorch's and tao-deploy's ``setup.py`` whose module exists and
  defines ``main``;
* plus the task's own rules (``TaskSupport.extra_consistency``).

Values that disagree with the plan answers (``.tao-scaffold-answers.yml``) only warn: the plan is a record,
the files are what runs.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaffolder.verify import specs as S
from scaffolder.layout import console_entry, pl_model_file
from scaffolder.workspace import read_console_scripts, script_name

if TYPE_CHECKING:  # pragma: no cover
    from scaffolder.verify.port import Port
    from scaffolder.verify.tasks.base import TaskSupport

ERROR, WARNING = "error", "warning"


@dataclass
class Violation:
    file: str
    key: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def same_numbers(a: Any, b: Any, tol: float = 1e-9) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_numbers(x, y, tol) for x, y in zip(a, b))
    try:
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=tol)
    except (TypeError, ValueError):
        return a == b


class _Checker:
    def __init__(self, port: Port, task: TaskSupport, strict: bool):
        self.port = port
        self.task = task
        self.strict = strict
        self.out: list[Violation] = []
        self.train_path = port.train_spec
        self.train: dict[str, Any] = {}
        self.deploy: dict[str, dict[str, Any]] = {}
        self.deploy_paths = port.deploy_specs

    def add(self, path: Path | str, key: str, message: str, severity: str = ERROR) -> None:
        self.out.append(Violation(self.port.rel(path), key, message, severity))

    def runtime(self, path: Path | str, key: str, message: str) -> None:
        self.add(path, key, message, ERROR if self.strict else WARNING)

    # -- loading -----------------------------------------------------------------------------------
    def load(self) -> bool:
        if not self.train_path.is_file():
            self.add(self.train_path, "-", "training experiment spec is missing")
            return False
        try:
            self.train = S.load_yaml(self.train_path)
        except S.SpecError as exc:
            self.add(self.train_path, "-", str(exc))
            return False
        if self.port.deploy_dir is None:
            self.add(self.port.repo("tao-deploy"), "-", f"no tao-deploy package for {self.port.name}")
        for subtask, path in self.deploy_paths.items():
            try:
                self.deploy[subtask] = S.load_yaml(path)
            except S.SpecError as exc:
                self.add(path, "-", str(exc))
        return True

    def schema(self, repo: str, constant: str) -> Any:
        folder = self.port.config_dirs.get(repo) or self.port.config_dirs.get("tao-core")
        if folder is None:
            return S.MISSING
        return S.module_constant(folder / "default_config.py", constant)

    def effective(self, doc: dict[str, Any], key: str, repo: str, constant: str | None) -> tuple[Any, str]:
        value = S.get(doc, key)
        if value is not S.MISSING:
            return value, "spec"
        if constant:
            default = self.schema(repo, constant)
            if default is not S.MISSING:
                return default, "schema default"
        return S.MISSING, "missing"

    # -- rules -----------------------------------------------------------------------------------------
    def normalisation(self) -> None:
        for key, constant, answer in (
            (self.task.mean_key, self.task.mean_constant, "mean"),
            (self.task.std_key, self.task.std_constant, "std"),
        ):
            if not key:  # the task's spec has no such key (e.g. RT-DETR feeds [0, 1] images)
                continue
            train_value, origin = self.effective(self.train, key, "tao-pytorch", constant)
            if train_value is S.MISSING:
                self.add(self.train_path, key, "not set and no schema default found")
                continue
            where = "" if origin == "spec" else f" ({origin})"
            for subtask, doc in self.deploy.items():
                value, dorigin = self.effective(doc, key, "tao-deploy", constant)
                if value is S.MISSING:
                    self.add(self.deploy_paths[subtask], key, "not set and no schema default found")
                elif not same_numbers(value, train_value):
                    dwhere = "" if dorigin == "spec" else f" ({dorigin})"
                    self.add(
                        self.deploy_paths[subtask], key,
                        f"{_fmt(value)}{dwhere} but the training spec {self.port.rel(self.train_path)} has "
                        f"{key} = {_fmt(train_value)}{where}: TensorRT inputs would be normalised differently "
                        "from training",
                    )
            reference = self.schema("tao-core", constant)
            for repo, folder in self.port.config_dirs.items():
                value = S.module_constant(folder / "default_config.py", constant)
                if reference is not S.MISSING and value is not S.MISSING and not same_numbers(value, reference):
                    self.add(folder / "default_config.py", constant,
                             f"{_fmt(value)} but tao-core's copy has {_fmt(reference)} (vendored config drifted)")
            planned = self.port.answers.get(answer)
            if planned is not None and not same_numbers(planned, train_value):
                self.add(self.train_path, key, f"{_fmt(train_value)} differs from the plan's {answer} "
                         f"{_fmt(planned)} ({self.port.rel(self.port.answers_file)})", WARNING)

    def handoffs(self) -> None:
        gen = self.deploy.get("gen_trt_engine")
        gen_path = self.deploy_paths.get("gen_trt_engine")
        onnx_keys = [(self.train, self.train_path, "export.onnx_file", "export", S.PYTORCH_TASK_DIRS)]
        consumers = []
        if gen is not None:
            consumers.append((gen, gen_path, "gen_trt_engine.onnx_file", "gen_trt_engine", S.DEPLOY_TASK_DIRS))
        if S.get(self.train, "gen_trt_engine.onnx_file") is not S.MISSING:
            consumers.append((self.train, self.train_path, "gen_trt_engine.onnx_file", None, None))
        self._handoff(onnx_keys[0], consumers)
        if gen is not None:
            engine_consumers = [
                (doc, self.deploy_paths[sub], f"{sub}.trt_engine", sub, S.DEPLOY_TASK_DIRS)
                for sub, doc in self.deploy.items()
                if sub != "gen_trt_engine" and S.get(doc, f"{sub}.trt_engine") is not S.MISSING
            ]
            self._handoff((gen, gen_path, "gen_trt_engine.trt_engine", "gen_trt_engine", S.DEPLOY_TASK_DIRS),
                          engine_consumers)

    def _handoff(self, producer, consumers) -> None:
        pdoc, ppath, pkey, psub, pdirs = producer
        if S.get(pdoc, pkey) is S.MISSING:
            if consumers:
                self.add(ppath, pkey, "not set, so the next phase cannot find the file")
            return
        produced = S.normpath(S.resolve(pdoc, pkey))
        for cdoc, cpath, ckey, csub, cdirs in consumers:
            consumed = S.normpath(S.resolve(cdoc, ckey))
            if "${" in str(produced) + str(consumed):
                continue
            if produced != consumed:
                self.add(cpath, ckey, f"{consumed} but {self.port.rel(ppath)} writes {pkey} = {produced}")
                continue
            if psub is None or csub is None:
                continue
            written = S.normpath(S.resolve(S.tao_runtime_view(pdoc, psub, pdirs), pkey))
            read = S.normpath(S.resolve(S.tao_runtime_view(cdoc, csub, cdirs), ckey))
            if written != read and "${" not in str(written) + str(read):
                self.runtime(
                    cpath, ckey,
                    f"at run time TAO sets results_dir to results_dir/<subtask> before ${{results_dir}} is "
                    f"resolved, so `{psub}` writes {written} but `{csub}` reads {read} (use absolute paths or "
                    f"paths that do not go through ${{results_dir}})",
                )

    def checkpoints(self) -> None:
        module = self.port.pytorch_dir / pl_model_file(self.port.name)
        names = S.class_attribute(module, "checkpoint_filename") if module.is_file() else {}
        if not names:
            self.add(module, "checkpoint_filename", "no Lightning module sets checkpoint_filename (TAO then names "
                     "checkpoints after its parent class)", WARNING)
            return
        cls, stem = next(iter(names.items()))
        latest = f"{stem}_latest.pth"
        train_dir = S.resolve(self.train, "train.results_dir") if S.get(self.train, "train.results_dir", None) else None
        if not train_dir and S.get(self.train, "results_dir", None):
            train_dir = posixpath.join(str(S.resolve(self.train, "results_dir")), "train")
        train_runtime = S.tao_runtime_view(self.train, "train", S.PYTORCH_TASK_DIRS)
        runtime_dir = S.get(train_runtime, "results_dir", None)
        for sub in ("evaluate", "inference", "export"):
            key = f"{sub}.checkpoint"
            if S.get(self.train, key) is S.MISSING:
                continue
            value = S.normpath(S.resolve(self.train, key))
            if not isinstance(value, str) or "${" in value:
                continue
            base = posixpath.basename(value)
            if not (base.startswith(f"{stem}_") and base.endswith(".pth")):
                self.add(self.train_path, key,
                         f"{value}, but {cls} ({self.port.rel(module)}) saves {stem}_*.pth (latest: {latest})")
                continue
            if train_dir and posixpath.dirname(value) != S.normpath(train_dir):
                self.add(self.train_path, key, f"{value} is not in train's results folder {S.normpath(train_dir)}",
                         WARNING)
                continue
            read = S.normpath(S.resolve(S.tao_runtime_view(self.train, sub, S.PYTORCH_TASK_DIRS), key))
            if runtime_dir and isinstance(read, str) and posixpath.dirname(read) != S.normpath(runtime_dir):
                self.runtime(
                    self.train_path, key,
                    f"at run time TAO sets results_dir to results_dir/<subtask> before ${{results_dir}} is "
                    f"resolved, so `train` writes {posixpath.join(S.normpath(runtime_dir), latest)} but `{sub}` "
                    f"reads {read}",
                )

    def head_width(self) -> None:
        """Tasks with a head fed by the backbone's pooled features (``TaskSupport.head_in_channels_key``):
        the head width in the specs == ``model_params_mapping`` for the spec's backbone, in every config copy."""
        if not self.task.head_in_channels_key:
            return
        mapping_ref = None
        mapping_file = None
        for repo in ("tao-core", "tao-pytorch", "tao-deploy"):
            folder = self.port.config_dirs.get(repo)
            if folder is None:
                continue
            path = folder / "model_params_mapping.py"
            params = S.module_constant(path, "map_params")
            table = S.get(params, "head.in_channels") if isinstance(params, dict) else S.MISSING
            if not isinstance(table, dict):
                self.add(path, "map_params['head']['in_channels']", "missing or not a literal mapping")
                continue
            if mapping_ref is None:
                mapping_ref, mapping_file = table, path
            elif table != mapping_ref:
                self.add(path, "map_params", f"{table} but {self.port.rel(mapping_file)} has {mapping_ref} "
                         "(vendored config drifted)")
        backbone, _ = self.effective(self.train, self.task.backbone_key, "tao-pytorch", "DEFAULT_BACKBONE")
        if mapping_ref is None or backbone is S.MISSING:
            return
        if backbone not in mapping_ref:
            self.add(self.train_path, self.task.backbone_key,
                     f"{backbone} has no entry in model_params_mapping ({', '.join(mapping_ref)})")
            return
        expected = mapping_ref[backbone]
        for path, doc in [(self.train_path, self.train), *((self.deploy_paths[k], v) for k, v in self.deploy.items())]:
            value = S.get(doc, self.task.head_in_channels_key)
            if value is not S.MISSING and value != expected:
                self.add(path, self.task.head_in_channels_key,
                         f"{value} but model_params_mapping has {expected} for backbone {backbone}")
        planned = self.port.answers.get("num_features", self.port.answers.get("head_in_channels"))
        if planned is not None and planned != expected:
            self.add(self.port.answers_file, "num_features",
                     f"{planned} but model_params_mapping has {expected} for {backbone}", WARNING)

    def geometry(self) -> None:
        """The backbone and the input size agree across the training spec, the deploy specs and the plan."""
        if not self.task.backbone_key:
            return
        backbone, _ = self.effective(self.train, self.task.backbone_key, "tao-pytorch", "DEFAULT_BACKBONE")
        for sub, doc in self.deploy.items():
            value = S.get(doc, self.task.backbone_key)
            if backbone is not S.MISSING and value is not S.MISSING and value != backbone:
                self.add(self.deploy_paths[sub], self.task.backbone_key,
                         f"{value} but the training spec has {backbone}")
        self.input_size()

    def input_size(self) -> None:
        if not self.task.img_size_key:
            return
        size = S.get(self.train, self.task.img_size_key)
        if size is S.MISSING:
            size = self.port.answers.get("img_size", S.MISSING)
        if size is S.MISSING:
            self.add(self.train_path, self.task.img_size_key, "not set (and no img_size in the plan)", WARNING)
            return
        for key in ("export.input_width", "export.input_height"):
            value = S.get(self.train, key)
            if value is not S.MISSING and value != size:
                self.add(self.train_path, key, f"{value} but {self.task.img_size_key} = {size}: the ONNX input "
                         "would not match the training resolution")
        for sub, doc in self.deploy.items():
            value = S.get(doc, self.task.img_size_key)
            if value is not S.MISSING and value != size:
                self.add(self.deploy_paths[sub], self.task.img_size_key,
                         f"{value} but the training spec has {size}")
        planned = self.port.answers.get("img_size")
        if planned is not None and planned != size:
            self.add(self.train_path, self.task.img_size_key, f"{size} differs from the plan's img_size {planned}",
                     WARNING)

    def class_count(self) -> None:
        if not self.task.num_classes_key:
            return
        classes = S.get(self.train, self.task.num_classes_key)
        for sub, doc in self.deploy.items():
            value = S.get(doc, self.task.num_classes_key)
            if classes is not S.MISSING and value is not S.MISSING and value != classes:
                self.add(self.deploy_paths[sub], self.task.num_classes_key,
                         f"{value} but the training spec has {classes}")

    def onnx_names(self) -> None:
        export = self.port.pytorch_dir / "scripts" / "export.py"
        if not export.is_file():
            self.add(export, "-", "export script is missing")
            return
        for constant, answer in (("INPUT_NAMES", "input_names"), ("OUTPUT_NAMES", "output_names")):
            value = S.module_constant(export, constant)
            planned = self.port.answers.get(answer)
            if value is S.MISSING:
                self.add(export, constant, "not a literal list: cannot check the ONNX tensor names", WARNING)
            elif planned is not None and list(value) != list(planned):
                self.add(export, constant, f"{value} but the plan ({self.port.rel(self.port.answers_file)}) has "
                         f"{answer} = {planned}, which the deploy side was generated for")

    def packaging(self) -> None:
        for folder in self.port.package_dirs():
            repo_root = next((self.port.repo(r) for r in ("tao-core", "tao-pytorch", "tao-deploy")
                              if self.port.repo(r) in folder.parents), None)
            package_dirs = {p.parent for p in folder.rglob("*.py") if "__pycache__" not in p.parts}
            package_dirs.add(folder)
            parent = folder.parent
            while repo_root is not None and parent != repo_root:
                package_dirs.add(parent)
                parent = parent.parent
            for pkg in sorted(package_dirs):
                if not (pkg / "__init__.py").is_file():
                    self.add(pkg, "__init__.py", "missing: the folder is not a package, so its modules are not "
                             "importable or shipped by setuptools")
        for repo, package in (("tao-pytorch", self.port.pytorch_package), ("tao-deploy", self.port.deploy_package)):
            setup_py = self.port.repo(repo) / "setup.py"
            if package is None:
                continue
            if not setup_py.is_file():
                self.add(setup_py, "console_scripts", "setup.py is missing")
                continue
            try:
                entries = [e for e in read_console_scripts(setup_py) if script_name(e) == self.port.name]
            except Exception as exc:  # noqa: BLE001 - WorkspaceError with a parse message
                self.add(setup_py, "console_scripts", str(exc))
                continue
            expected = console_entry(repo, self.port.name)
            if not entries:
                self.add(setup_py, "entry_points.console_scripts", f"no {self.port.name}=... entry (expected {expected})")
                continue
            target = entries[0].split("=", 1)[1].strip()
            module, _, func = target.partition(":")
            module_file = self.port.repo(repo).joinpath(*module.split(".")).with_suffix(".py")
            if not module_file.is_file():
                self.add(setup_py, "entry_points.console_scripts", f"{entries[0]}: module {module} does not exist")
            elif func and not S.defines_function(module_file, func.strip()):
                self.add(setup_py, "entry_points.console_scripts",
                         f"{entries[0]}: {self.port.rel(module_file)} defines no {func.strip()}()")


def check_port(port: Port, task: TaskSupport, *, strict: bool = False) -> list[Violation]:
    checker = _Checker(port, task, strict)
    if checker.load():
        checker.normalisation()
        checker.handoffs()
        checker.checkpoints()
        checker.geometry()
        checker.head_width()
        checker.class_count()
        checker.onnx_names()
        checker.out += task.extra_consistency(port, checker.train, checker.deploy)
    checker.packaging()
    return checker.out
