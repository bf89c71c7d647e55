"""The weight mapping of one port: derived from the HF model's and the TAO backbone's own state dicts.

Both models are built on the meta device (shapes and module attributes, no memory, no weights), the
catalog's key rules map one onto the other, and every TAO tensor must get exactly one source of the right
shape. Norm eps is not a weight: where TAO's default differs from HF's, the port records HF's value per TAO
module so the generated model reproduces HF numerics. Results are cached per (config, backbone, versions):
deriving needs torch, transformers and TAO, which cost seconds to import.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scaffolder import __version__
from scaffolder.errors import ScaffoldError
from scaffolder.tasks import CLASSIFICATION, hf_auto_class_for, load_object, task_named

CACHE_VERSION = 5  # 2: keyed by task and task_params; 3: keyed by the derivation code's own content; 4: rows only;
# 5: keyed by a generated backbone's kwargs


def _code_fingerprint() -> str:
    """Hash of the code a derivation depends on (engine, key handling, TAO model builders, the catalog), so an
    edit to any of it -- on any branch -- can never be served a mapping derived by the old code."""
    root = Path(__file__).resolve().parent.parent
    files = sorted([*(root / "convert").glob("*.py"), *(root / "catalog").glob("*.py")])
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class PortMapping:
    rows: list  # [(tao_key, [hf_keys], [[op, arg], ...]), ...] -- JSON/YAML-safe form of WeightMapping.table()
    norm_eps: dict[str, float] = field(default_factory=dict)  # TAO module -> HF eps where they differ
    notes: list[str] = field(default_factory=list)  # one line each; the converter shows them as comments


def cache_dir() -> Path:
    return Path.home() / ".cache" / "tao-scaffold" / "mappings"


def _cache_key(config: dict, family: str, task: str, target: str, num_classes: int, task_params: dict,
               backbone_kwargs: dict) -> str:
    import importlib.metadata as md

    versions = {d: _version(md, d) for d in ("transformers", "timm", "nvidia-tao-pytorch")}
    blob = json.dumps([CACHE_VERSION, __version__, _code_fingerprint(), config, family, task, target, num_classes,
                       task_params, backbone_kwargs, versions], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _version(md, dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "absent"


def derive_for_port(config: dict, family: str, backbone: str, *, timm_name: str = "", num_classes: int,
                    task: str = CLASSIFICATION.name, task_params: dict | None = None, strategy: str = "",
                    backbone_kwargs: dict | None = None, use_cache: bool = True) -> PortMapping:
    """Mapping for a ``task`` port whose TAO backbone is ``backbone``: a generated one is built as its module
    builds it (``strategy`` tao_class: TAO's class of the family; timm_subclass, or any ``timm_name``: that timm
    architecture), with its ``backbone_kwargs``."""
    from scaffolder.convert.parity import backbone_target

    target = backbone_target(backbone, strategy=strategy or ("timm_subclass" if timm_name else "reuse"),
                             timm_name=timm_name, family=family)
    task_params = dict(task_params or {})
    backbone_kwargs = dict(backbone_kwargs or {})
    key = _cache_key(config, family, task, target, num_classes, task_params, backbone_kwargs)
    cached = cache_dir() / f"{key}.json"
    if use_cache and cached.is_file():
        try:
            return PortMapping(**json.loads(cached.read_text()))
        except (ValueError, TypeError, OSError):
            pass  # written by another tool version sharing the cache (or torn): derive again, overwrite it
    result = _derive(config, family, task, target, num_classes, task_params, backbone_kwargs)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result)))
    tmp.replace(cached)
    return result


def _derive(config: dict, family: str, task: str, target: str, num_classes: int, task_params: dict,
            backbone_kwargs: dict) -> PortMapping:
    import torch
    from transformers import AutoConfig

    from scaffolder.convert.engine import derive_mapping
    from scaffolder.convert.hf_keys import checkpoint_view
    from scaffolder.convert.parity import _eps_mismatches

    spec = task_named(task)
    hf_config = AutoConfig.for_model(**{k: v for k, v in config.items() if k not in ("transformers_version",)})
    with torch.device("meta"):
        # a backbone under another task's head may be mapped from its own architecture (segmentation), else the
        # task's auto class (or, for a backbone-only detection port, the checkpoint's classifier / base model)
        hf_class = hf_model_class(spec, config, task_params)
        hf = hf_class.from_config(hf_config) if hasattr(hf_class, "from_config") else hf_class(hf_config)
    build_tao = load_object(spec.tao_model_builder)
    # a generated backbone's geometry (classification's generated backbone_v2 modules, the ViT feature pyramid)
    extra = {"backbone_kwargs": backbone_kwargs} if backbone_kwargs else {}
    try:
        with torch.device("meta"):  # shapes only: no memory, no init cost
            tao = build_tao(target, num_classes, task_params, **extra)
    except (RuntimeError, NotImplementedError):  # some TAO backbones compute values at init (e.g. .item())
        tao = build_tao(target, num_classes, task_params, **extra)
    hf_sd, in_memory = checkpoint_view(hf)  # the names the checkpoint files carry, not this transformers'
    mapping = derive_mapping(hf_sd, tao.state_dict(), family, task)
    mapping.hf_in_memory = in_memory
    if not mapping.ok:
        raise ScaffoldError(f"cannot map HF {family} weights onto TAO {target}: {mapping.problems()}",
                            "the catalog's key rules for this family need an entry for these keys")
    norm_eps = {tao_name: hf_eps for (_, hf_eps, _, _), pairs in _eps_mismatches(hf, tao, mapping).items()
                for _, tao_name in pairs}
    from scaffolder.catalog import family_named

    rules = getattr(family_named(family), "tasks", {}).get(task)
    notes = list(rules.plan_notes) if rules is not None else []  # what the task starts fresh / compares
    if mapping.skipped_head:
        notes.append(f"{task} head not converted: {mapping.skipped_head.reason}")
    if mapping.fresh:
        notes.append(f"{len(mapping.fresh)} TAO tensors start from TAO's initialisation: the HF checkpoint has no "
                     f"counterpart ({', '.join(sorted({k.split('.')[0] + '.*' for k in mapping.fresh}))})")
    if norm_eps:
        notes.append(f"{len(norm_eps)} norm layers take HF's eps ({', '.join(sorted({f'{e:g}' for e in norm_eps.values()}))})")
    notes += mapping.reason_notes()
    rows = json.loads(json.dumps(mapping.table()))  # tuples -> lists: the plan's YAML-safe form
    return PortMapping(rows=rows, norm_eps=norm_eps, notes=[" ".join(n.split()) for n in notes])


def hf_model_class(spec, config: dict, task_params: dict | None = None):
    """The transformers class the mapping is derived from: the task's auto class for a model of the task; for a
    backbone ported under another task's head (e.g. ConvNextForImageClassification under SegFormer) the config's
    own architecture when the task says so (TaskSpec.mapping_from_own_architecture)."""
    import transformers

    architectures = list(config.get("architectures") or [])
    own = next((getattr(transformers, a, None) for a in architectures if hasattr(transformers, a)), None)
    if own is None or not spec.mapping_from_own_architecture or spec.accepts_architecture(architectures):
        return load_object(f"transformers:{hf_auto_class_for(spec, task_params, architectures)}")
    return own


def mapping_for_plan(plan, config: dict, progress=lambda _msg: None) -> PortMapping | None:
    """The port's weight mapping, or None when its family has no conversion rules for its task."""
    from scaffolder.catalog import family_named

    family = family_named(plan.family)
    if family is None or family.key_rules(plan.task) is None:
        return None
    progress(f"map: HF {plan.family} weights -> TAO {plan.backbone} {plan.task} model (derived from both state dicts)")
    timm_name = plan.timm_name if plan.backbone_strategy == "timm_subclass" else ""
    return derive_for_port(config, family.name, plan.backbone, timm_name=timm_name, num_classes=plan.num_classes,
                           task=plan.task, task_params=plan.task_params, strategy=plan.backbone_strategy,
                           backbone_kwargs=plan.backbone_kwargs)
