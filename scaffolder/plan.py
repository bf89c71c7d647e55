"""The port plan: every decision tao-scaffold makes about a port, in one reviewable object.

``PortPlan`` is the pipeline's single data object (inspect -> plan -> render -> patch -> format -> verify).
Serialised as ``port.yml`` it is also a valid Copier data file: each field is a question in ``copier.yml``,
so ``copier copy <tao-scaffold> <workspace> --data-file port.yml`` renders exactly what ``generate`` does.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scaffolder import __version__
from scaffolder.errors import ScaffoldError, WorkspaceError
from scaffolder.layout import DEFAULT_COPYRIGHT, answers_relpath
from scaffolder.naming import pascal_case, validate_name
from scaffolder.tasks import TASKS, load_object, task_named

# Plan fields renamed by later tool versions: old name -> new name (answers files of older ports still load).
_RENAMED = {"head_in_channels": "num_features"}
PLAN_HEADER = (
    "# tao-scaffold port plan. Review and edit, then:\n"
    "#   tao-scaffold generate --plan port.yml --workspace DIR\n"
    "# or, with plain Copier:  copier copy <tao-scaffold checkout> DIR --data-file port.yml\n"
)


@dataclass
class PortPlan:
    # identity
    name: str
    task: str
    class_name: str = ""
    # source model
    model: str = ""  # hub id, or the local folder's name (never a path of this machine: the port is committed)
    model_type: str = ""
    architectures: list[str] = field(default_factory=list)
    pipeline_tag: str = ""
    # architecture decision (from the catalog)
    family: str = ""
    backbone: str = ""
    backbone_strategy: str = "reuse"  # reuse | tao_class | timm_subclass | hf_wrapper | generated
    strategy_reason: str = ""
    timm_name: str = ""
    # constructor arguments of a generated backbone (tao_class / timm_subclass): the HF model's geometry
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    num_features: int = 0  # the backbone's pooled feature width (a classifier head's in_channels)
    # input and preprocessing (training spec and deploy specs share these)
    img_size: int = 224
    in_channels: int = 3
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    # labels
    num_classes: int = 2
    class_names: list[str] = field(default_factory=list)
    # the task's own section (scaffolder.tasks.TaskSpec.params): keys and defaults declared by the task
    task_params: dict[str, Any] = field(default_factory=dict)
    # export contract
    input_names: list[str] = field(default_factory=lambda: ["input"])
    output_names: list[str] = field(default_factory=lambda: ["output"])
    opset_version: int = 17
    export_notes: list[str] = field(default_factory=list)
    # HF -> TAO weights (scaffolder.convert.port_mapping): the mapping table as rows (validated data), HF's norm eps
    # per TAO module where TAO's default differs, and what the derivation noted (e.g. head not converted)
    weight_mapping: list = field(default_factory=list)  # rows [tao_key, [hf_keys], [[op, arg], ...]] (data)
    norm_eps: dict[str, float] = field(default_factory=dict)
    mapping_notes: list[str] = field(default_factory=list)
    hf_adaptations: list[str] = field(default_factory=list)  # catalog Family.hf_adaptations
    # workspace layout: "vendored" (7.x: config copies in tao-pytorch/tao-deploy) or "core" (6.x)
    config_layout: str = "vendored"
    tao_version: str = "7.3.0"
    copyright: str = DEFAULT_COPYRIGHT  # the header's copyright line, as the workspace's files have it ("" for none)
    tool_version: str = __version__

    def __post_init__(self) -> None:
        validate_name(self.name)
        if not isinstance(self.task, str) or self.task not in TASKS:
            raise ScaffoldError(f"task {self.task!r} has no blueprint", f"choose one of: {', '.join(TASKS)}")
        if not isinstance(self.task_params, dict):
            raise PlanFieldError("task_params", "is not a mapping")
        self.task_params = task_named(self.task).params_from(self.task_params)
        self.class_name = self.class_name or pascal_case(self.name)
        if isinstance(self.weight_mapping, str):  # plans of tool versions that carried Python source
            self.weight_mapping = _mapping_rows_from_source(self.weight_mapping)
        self.weight_mapping = _plain(self.weight_mapping)
        validate_plan(self)
        spec = task_named(self.task)
        if spec.plan_check:  # the task's own facts (e.g. decoder widths vs the backbone)
            load_object(spec.plan_check)(self)

    # -- Copier data ---------------------------------------------------------------------------------
    def answers(self) -> dict[str, Any]:
        """The plan as Copier answers (plain, YAML-safe types only)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return PLAN_HEADER + dump_yaml(self.answers())

    def write(self, path: Path) -> None:
        path.write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_answers(cls, data: dict[str, Any]) -> "PortPlan":
        """A plan from port.yml / answers data; fields renamed since an older tool version are migrated."""
        data = {_RENAMED.get(k, k): v for k, v in data.items()}
        _migrate_backbone_kwargs(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(k for k in data if not k.startswith("_")) - known)
        if unknown:
            raise ScaffoldError(f"port plan has unknown keys: {', '.join(unknown)}", "remove them or regenerate the plan")
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path: Path) -> "PortPlan":
        data = load_yaml_file(path, "port plan", ScaffoldError, "fix port.yml, or write a new one with `tao-scaffold inspect --out`")
        if not isinstance(data, dict):
            raise ScaffoldError(f"port plan {path} is not a YAML mapping",
                                "write one with `tao-scaffold inspect MODEL --out port.yml`")
        return cls.from_answers(data)


def _migrate_backbone_kwargs(data: dict[str, Any]) -> None:
    """Plans of tool versions whose timm partial kept each generated backbone's geometry in its own tables:
    the geometry now travels in ``backbone_kwargs``, taken from the catalog variant of that name."""
    if data.get("backbone_strategy") != "timm_subclass" or data.get("backbone_kwargs"):
        return
    from scaffolder.catalog import family_named  # pylint: disable=import-outside-toplevel

    family = family_named(str(data.get("family", "")))
    variant = next((v for v in family.variants if v.backbone == data.get("backbone")), None) if family else None
    if variant is not None:
        data["backbone_kwargs"] = dict(variant.backbone_kwargs)


def read_answers(workspace_root: Path, name: str) -> dict[str, Any]:
    """The answers file ``generate`` wrote for port ``name`` (raw, ``_commit`` etc. included)."""
    path = workspace_root / answers_relpath(name)
    if not path.is_file():
        raise WorkspaceError(f"no tao-scaffold port named {name!r} in {workspace_root} ({path.name} not found)",
                             "generate it first: tao-scaffold generate --name ...")
    data = load_yaml_file(path, answers_relpath(name), WorkspaceError, "restore it from git, or regenerate the port")
    if not isinstance(data, dict):
        raise WorkspaceError(f"{answers_relpath(name)} is not a YAML mapping", "restore it from git")
    return data


# -- YAML: plans and answers files are shared and reviewed, so read as untrusted ---------------------------
MAX_PLAN_BYTES = 32 * 2**20  # 50k labels of 256 characters fit, a YAML bomb's expansion does not matter


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a 1000-label plan in ms, not seconds


def _load_without_aliases(text: str) -> Any:
    """safe_load, refusing aliases: a plan never needs them, and nested aliases expand exponentially."""
    for event in yaml.parse(text, Loader=_SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, f"YAML alias *{event.anchor} (aliases are not allowed)",
                                              event.start_mark)
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 -- a safe loader


def _unsafe_char(ch: str) -> bool:
    return ch != " " and unicodedata.category(ch)[0] in "CZ"


class _FlowRow(list):
    """A weight-mapping row: dumped on one line."""


class _PlanDumper(yaml.SafeDumper):
    """Readable YAML (unicode as is) except where YAML or a reviewer's screen would change a value: strings with
    invisible, bidi or line-separator characters are double-quoted with every non-ASCII character escaped
    (PyYAML writes U+0085 raw, and reads it back as a line break)."""

    def ignore_aliases(self, data) -> bool:
        return True

    def represent_str(self, data: str):
        if any(map(_unsafe_char, data)):
            return self.represent_scalar("tag:yaml.org,2002:str", data, style='"')
        return super().represent_str(data)

    def write_double_quoted(self, text, split=True):
        escape_all = any(map(_unsafe_char, text))
        saved, self.allow_unicode = self.allow_unicode, self.allow_unicode and not escape_all
        try:
            super().write_double_quoted(text, split)
        finally:
            self.allow_unicode = saved


_PlanDumper.add_representer(str, _PlanDumper.represent_str)
_PlanDumper.add_representer(_FlowRow, lambda dumper, row: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", list(row), flow_style=True))


def dump_yaml(data: Any) -> str:
    if isinstance(data, dict) and data.get("weight_mapping"):
        data = {**data, "weight_mapping": [_FlowRow(row) for row in data["weight_mapping"]]}
    return yaml.dump(data, Dumper=_PlanDumper, sort_keys=False, allow_unicode=True, width=100)


def load_yaml_file(path: Path, what: str, error: type[ScaffoldError], hint: str) -> Any:
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise error(f"{what} {path} is larger than {MAX_PLAN_BYTES // 2**20} MiB", hint)
        return _load_without_aliases(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise error(f"cannot read {what} {path}: {detail[:300]}", hint) from exc


# -- field validation: every field that is not free text is checked, free text is one printable line -----
MAX_CLASSES = 50_000  # ImageNet-21k has 21,841; more only makes black and the specs crawl
MAX_LABEL_LENGTH = 256
MAX_TEXT_LENGTH = 2_000
IMG_SIZE_RANGE = (8, 8192)
MAX_CHANNELS = 16
OPSET_RANGE = (7, 30)
MAPPING_OPS = ("copy", "concat", "reshape", "permute", "squeeze", "unsqueeze", "fill", "optional",
               "first_of")  # runtime OPS
_COMBINE_OPS, _SHAPE_OPS = ("copy", "concat", "fill"), ("reshape", "permute", "squeeze", "unsqueeze")
_VERSION = re.compile(r"^[0-9]+(\.[0-9A-Za-z]+){0,5}([+-][0-9A-Za-z.]+)?$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.\-]*$")  # model types, timm names, pipeline tags, families
_STATE_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,300}$")
_PASCAL = re.compile(r"^[A-Z][A-Za-z0-9]{0,79}$")
_HINT = "fix it in port.yml (or in the model's config.json / preprocessor_config.json it came from)"


class PlanFieldError(ScaffoldError):
    def __init__(self, name: str, problem: str, hint: str = _HINT):
        super().__init__(f"port plan field {name} {problem}", hint)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def one_line_problem(text: Any, limit: int = MAX_TEXT_LENGTH) -> str | None:
    """Why ``text`` is not one printable line of at most ``limit`` characters (None when it is)."""
    if not isinstance(text, str):
        return f"is {type(text).__name__}, not text"
    if len(text) > limit:
        return f"is {len(text)} characters long (at most {limit})"
    for ch in text:
        if ch != " " and unicodedata.category(ch)[0] in "CZ":
            return f"contains the non-printing character U+{ord(ch):04X}"
    return None


def _int_in(plan: "PortPlan", name: str, low: int, high: int) -> None:
    value = getattr(plan, name)
    if not _is_int(value) or not low <= value <= high:
        raise PlanFieldError(name, f"is {_shown(value)}, not an integer from {low} to {high}")


def _match(plan: "PortPlan", name: str, pattern: re.Pattern, what: str, *, empty: bool = True) -> None:
    value = getattr(plan, name)
    if not isinstance(value, str) or len(value) > 200 or not pattern.match(value) or (not value and not empty):
        raise PlanFieldError(name, f"is {_shown(value)}, not {what}")


def _text_list(plan: "PortPlan", name: str, *, limit: int = MAX_TEXT_LENGTH, max_items: int = 100,
               pattern: re.Pattern | None = None) -> None:
    values = getattr(plan, name)
    if not isinstance(values, list) or len(values) > max_items:
        raise PlanFieldError(name, f"is {_shown(values)}, not a list of at most {max_items} strings")
    for item in values:
        problem = one_line_problem(item, limit)
        if problem is None and pattern is not None and not pattern.match(item):
            problem = f"is not of the form {pattern.pattern}"
        if problem:
            raise PlanFieldError(f"{name} item {_shown(item)}", problem)


def _floats(plan: "PortPlan", name: str, *, positive: bool) -> None:
    values = getattr(plan, name)
    if not isinstance(values, list) or len(values) != plan.in_channels or not all(map(_is_number, values)):
        raise PlanFieldError(name, f"is {_shown(values)}, not {plan.in_channels} finite numbers (one per input "
                                   f"channel, in_channels={plan.in_channels})")
    if positive and not all(v > 0 for v in values):
        raise PlanFieldError(name, f"is {_shown(values)}: every value must be > 0 (TAO divides by it)")
    if not all(abs(v) <= 1e6 for v in values):
        raise PlanFieldError(name, f"is {_shown(values)}: values beyond 1e6 are not a normalisation")


def validate_plan(plan: "PortPlan") -> None:
    """Raise :class:`PlanFieldError` (one line) for the first field that is not what the blueprints assume.

    Fields spliced into code (names, versions, numbers) are checked against their exact form; free text
    (model, notes, reasons, architectures) must be one printable line -- the blueprints escape it, but a
    reviewer reading port.yml should see what the port will contain.
    """
    from scaffolder.planner import STRATEGIES

    _match(plan, "class_name", _PASCAL, "a PascalCase identifier")
    problem = one_line_problem(plan.model, 1000)
    if problem:
        raise PlanFieldError("model", problem)
    for name in ("model_type", "pipeline_tag", "family", "timm_name"):
        _match(plan, name, _TOKEN, "a name of letters, digits, '_', '.', '-'")
    _text_list(plan, "architectures", limit=300)
    _match(plan, "backbone", _IDENT, "a Python identifier (a backbone_v2 registry name)", empty=False)
    if plan.backbone_strategy not in STRATEGIES:
        raise PlanFieldError("backbone_strategy", f"is {_shown(plan.backbone_strategy)}, not one of {', '.join(STRATEGIES)}")
    for name in ("strategy_reason",):
        problem = one_line_problem(getattr(plan, name))
        if problem:
            raise PlanFieldError(name, problem)
    _backbone_kwargs(plan)
    _int_in(plan, "num_features", 0, 65536)
    _int_in(plan, "img_size", *IMG_SIZE_RANGE)
    _int_in(plan, "in_channels", 1, MAX_CHANNELS)
    _floats(plan, "mean", positive=False)
    _floats(plan, "std", positive=True)
    _int_in(plan, "num_classes", 1, MAX_CLASSES)
    labels = plan.class_names
    if not isinstance(labels, list) or (labels and len(labels) != plan.num_classes):
        raise PlanFieldError("class_names", f"has {len(labels) if isinstance(labels, list) else _shown(labels)} "
                             f"entries, not num_classes={plan.num_classes} (or none)")
    for label in labels:
        if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL_LENGTH:
            raise PlanFieldError(f"class_names item {_shown(label)}",
                                 f"is not a label of 1 to {MAX_LABEL_LENGTH} characters")
    _text_list(plan, "input_names", limit=64, max_items=8, pattern=_IDENT)
    _text_list(plan, "output_names", limit=64, max_items=8, pattern=_IDENT)
    _int_in(plan, "opset_version", *OPSET_RANGE)
    _text_list(plan, "export_notes")
    _text_list(plan, "mapping_notes")
    _text_list(plan, "hf_adaptations", limit=64, pattern=_IDENT)
    validate_mapping_rows(plan.weight_mapping)
    if not isinstance(plan.norm_eps, dict) or not all(
        isinstance(k, str) and _STATE_KEY.match(k) and _is_number(v) and 0 < v < 1 for k, v in plan.norm_eps.items()
    ):
        raise PlanFieldError("norm_eps", f"is {_shown(plan.norm_eps)}, not a mapping of module names to eps in (0, 1)")
    problem = one_line_problem(plan.copyright, 300)
    if problem or plan.copyright.startswith("#"):
        raise PlanFieldError("copyright", problem or "starts with '#' (the header adds it)",
                             "give the line as the workspace's files have it, after '# ' (or \"\" for none)")
    if plan.config_layout not in ("vendored", "core"):
        raise PlanFieldError("config_layout", f"is {_shown(plan.config_layout)}, not vendored or core")
    for name in ("tao_version", "tool_version"):
        _match(plan, name, _VERSION, "a version number (e.g. 7.3.0)", empty=False)


def _kwarg_value_ok(value: Any, depth: int = 0) -> bool:
    if isinstance(value, bool) or _is_number(value):
        return not _is_number(value) or abs(value) <= 1e9
    if isinstance(value, str):
        return bool(_IDENT.match(value)) and len(value) <= 64
    return (depth == 0 and isinstance(value, list) and len(value) <= 16
            and all(_kwarg_value_ok(v, 1) and not isinstance(v, str) for v in value))


def _backbone_kwargs(plan: "PortPlan") -> None:
    """Constructor arguments spliced into the generated backbone module: identifiers -> numbers, booleans, short
    lists of numbers, or a class name the blueprint resolves from its own table."""
    kwargs = plan.backbone_kwargs
    if not isinstance(kwargs, dict) or len(kwargs) > 32:
        raise PlanFieldError("backbone_kwargs", f"is {_shown(kwargs)}, not a mapping of at most 32 arguments")
    for key, value in kwargs.items():
        if not (isinstance(key, str) and _IDENT.match(key) and len(key) <= 64) or key.startswith("_"):
            raise PlanFieldError(f"backbone_kwargs key {_shown(key)}", "is not a constructor argument name")
        if not _kwarg_value_ok(value):
            raise PlanFieldError(f"backbone_kwargs.{key}", f"is {_shown(value)}, not a number, boolean, identifier "
                                 "or list of at most 16 numbers")
    if kwargs and plan.backbone_strategy not in ("tao_class", "timm_subclass", "generated"):
        raise PlanFieldError("backbone_kwargs", f"is set, but backbone_strategy {plan.backbone_strategy} generates no "
                             "backbone that takes them (tao_class, timm_subclass, generated)")


def validate_mapping_rows(rows: Any) -> None:
    """The weight mapping is data: rows ``[tao_key, [hf_keys], [[op, arg], ...]]`` of the runtime's ops."""
    if not isinstance(rows, list) or len(rows) > 100_000:
        raise PlanFieldError("weight_mapping", f"is {_shown(rows)}, not a list of mapping rows")
    for row in rows:
        problem = _row_problem(row)
        if problem:
            raise PlanFieldError(f"weight_mapping row {_shown(row)}", problem,
                                 "regenerate the plan with `tao-scaffold inspect` (the mapping is derived, not edited)")


def _row_problem(row: Any) -> str | None:
    if not (isinstance(row, (list, tuple)) and len(row) == 3):
        return "is not [tao_key, [hf_keys], [[op, arg], ...]]"
    tao_key, hf_keys, ops = row
    if not (isinstance(tao_key, str) and _STATE_KEY.match(tao_key)):
        return "has a TAO key that is not a state-dict key"
    if not (isinstance(hf_keys, (list, tuple)) and len(hf_keys) <= 64
            and all(isinstance(k, str) and _STATE_KEY.match(k) for k in hf_keys)):
        return "has HF keys that are not state-dict keys"
    if not (isinstance(ops, (list, tuple)) and 0 < len(ops) <= 8):
        return "has no ops (or too many)"
    if isinstance(ops[0], (list, tuple)) and list(ops[0]) == ["optional", None]:
        ops = ops[1:]  # a row the checkpoint may lack; the steps after it follow the usual rule
    if ops and isinstance(ops[0], (list, tuple)) and list(ops[0]) == ["first_of", None]:
        then = ops[1] if len(ops) >= 2 else None
        if not (len(hf_keys) >= 2 and isinstance(then, (list, tuple)) and list(then[:1]) == ["copy"]):
            return "has first_of without alternative HF keys and a copy step after it"
        ops, hf_keys = ops[1:], hf_keys[:1]  # alternative names of one tensor: one source
    for position, op in enumerate(ops):
        if not (isinstance(op, (list, tuple)) and len(op) == 2 and op[0] in MAPPING_OPS):
            return f"has an op {_shown(op)} that is not [op, arg] with op one of {', '.join(MAPPING_OPS)}"
        name, arg = op
        if (name in _COMBINE_OPS) != (position == 0):
            return f"has {name} at step {position + 1} (the first step is one of {', '.join(_COMBINE_OPS)}, only then "
            f"{', '.join(_SHAPE_OPS)})"
        ok = {
            "copy": arg is None and len(hf_keys) == 1,
            "concat": _is_int(arg) and -8 <= arg < 8 and len(hf_keys) >= 1,
            "squeeze": _is_int(arg) and -8 <= arg < 8,
            "unsqueeze": _is_int(arg) and -8 <= arg < 8,
            "reshape": _int_list(arg, -1),
            "permute": _int_list(arg, 0),
            "optional": False,  # only as the first step (stripped above)
            "first_of": False,  # only right before copy (stripped above)
            "fill": (isinstance(arg, (list, tuple)) and len(arg) == 2 and _is_number(arg[0])
                     and _int_list(arg[1], 0) and not hf_keys),
        }[name]
        if not ok:
            return f"has {name} with an argument {_shown(arg)} it does not take"
    return None


def _int_list(value: Any, low: int) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) <= 8
            and all(_is_int(v) and low <= v <= 2**31 for v in value))


def _mapping_rows_from_source(source: str) -> list:
    """Rows from the ``MAPPING = [...]`` literal older plans carried (parsed as a literal, never executed)."""
    if not source.strip():
        return []
    try:
        tree = ast.parse(source)
        (value,) = [n.value for n in tree.body if isinstance(n, ast.Assign)]
        rows = ast.literal_eval(value)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise PlanFieldError("weight_mapping", "is Python source that is not a plain MAPPING = [...] literal",
                             "regenerate the plan with `tao-scaffold inspect`") from None
    return _plain(rows)


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively (YAML-safe, and what a plan read back from port.yml holds)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
