"""Numerical proof that a derived mapping is right: HF model vs converted TAO model, same input.

``check_parity`` builds the HF model from its config with random weights (no download), perturbs every
state-dict tensor so that no two tensors are alike (HF initialises LayerNorms, GRN, layer scales and
BatchNorm statistics to constants, which would hide swapped or dropped tensors), derives the mapping,
converts, loads the TAO model with ``strict=True`` (bar a reported head skip) and compares what each
model feeds its classifier (pre-logit features) and the logits in fp32.

Differences weights cannot fix are reported as ``findings``, computed from the two models rather than
written per family: norm ``eps`` that differ between mapped modules, activation kinds that differ,
HF modules that run whose TAO counterpart never runs in ``forward`` (dropped computation), and a TAO
``forward_pre_logits`` that is not the classifier input.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Mapping
from unittest import mock

import torch
from torch import nn

from scaffolder.catalog import Family, family_for
from scaffolder.convert.engine import WeightMapping, derive_mapping, resolve_family
from scaffolder.convert.hf_keys import checkpoint_view
from scaffolder.tasks import CLASSIFICATION, load_object
from scaffolder.convert.runtime import apply_mapping
from scaffolder.errors import ScaffoldError

TOLERANCE = 1e-4


class ParityError(ScaffoldError):
    """The HF and TAO models cannot be compared (mapping incomplete, load failed)."""


@dataclass
class ParityResult:
    family: str
    backbone: str
    hf_class: str
    tao_class: str
    max_abs_features: float
    max_abs_logits: float | None  # None when the head was not converted (see mapping.skipped_head)
    n_params: int  # TAO parameters (elements) loaded from the converted state dict
    mapping: WeightMapping
    findings: list[str] = field(default_factory=list)
    # The same comparison after setting the TAO norms' eps to HF's (None when they already agree): isolates
    # the mapping from the eps mismatch that weights cannot fix.
    eps_aligned_features: float | None = None
    eps_aligned_logits: float | None = None
    tol: float = TOLERANCE
    input_shape: tuple[int, ...] = ()
    tao_overrides: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """The TAO model as TAO builds it reproduces HF within ``tol``."""
        return _within(self.max_abs_features, self.max_abs_logits, self.tol)

    @property
    def mapping_exact(self) -> bool:
        """The converted weights reproduce HF within ``tol`` once non-weight differences (eps) are aligned."""
        if self.eps_aligned_features is None:
            return self.passed
        return _within(self.eps_aligned_features, self.eps_aligned_logits, self.tol)

    def describe(self) -> str:
        logits = "n/a" if self.max_abs_logits is None else f"{self.max_abs_logits:.2e}"
        verdict = "PASS" if self.passed else "FAIL"
        text = (
            f"{verdict} {self.family} -> {self.backbone}: max|dfeat| {self.max_abs_features:.2e}, "
            f"max|dlogit| {logits} (tol {self.tol:g}, fp32, input {self.input_shape}, "
            f"{self.n_params / 1e6:.2f}M params, {self.seconds:.1f}s)"
        )
        if self.eps_aligned_features is not None:
            aligned = "n/a" if self.eps_aligned_logits is None else f"{self.eps_aligned_logits:.2e}"
            text += (
                f"\n  eps aligned to HF: max|dfeat| {self.eps_aligned_features:.2e}, max|dlogit| {aligned} "
                f"-> mapping {'exact' if self.mapping_exact else 'WRONG'}"
            )
        for finding in self.findings:
            text += f"\n  - {finding}"
        return text


def _within(features: float, logits: float | None, tol: float) -> bool:
    return features <= tol and (logits is None or logits <= tol)


def check_parity(
    backbone: str,
    hf_config: Any,
    *,
    seed: int = 0,
    family: Family | str | None = None,
    tao_overrides: Mapping[str, Any] | None = None,
    batch_size: int = 2,
    image_size: int | tuple[int, int] | None = None,
    tol: float = TOLERANCE,
) -> ParityResult:
    """Compare the HF model built from ``hf_config`` with TAO ``backbone`` loaded with its converted weights.

    ``backbone``: a TAO ``BACKBONE_REGISTRY`` name, a catalog ``timm_subclass`` variant (built as its timm
    architecture), a size the catalog generates for ``hf_config`` (``Family.sized``: built as the generated module
    builds it), or ``timm:<name>`` for any timm architecture a generated backbone will subclass.
    When ``hf_config`` is not the catalog variant of ``backbone`` (a reduced config), the
    TAO constructor arguments are derived from the config by the family's ``key_rules.tao_kwargs``;
    ``tao_overrides`` adds/overrides constructor kwargs (e.g. ``{"post_norm": True}`` for Swin). ``image_size``
    overrides the input resolution (default: the config's ``image_size``).

    When the outputs disagree, the first mapped module pair (in HF execution order) whose outputs differ is
    located and reported, so a failure says *where* the two architectures part ways.
    """
    started = time.perf_counter()
    config = _as_config(hf_config)
    cfg = config.to_dict()
    fam = _family(family, cfg.get("model_type", ""))
    rules = fam.key_rules(CLASSIFICATION.name)
    if rules is None:
        raise ParityError(f"family {fam.name!r} has no key rules for {CLASSIFICATION.name} ports")
    hf, tao, overrides = _build_pair(fam, backbone, config, seed, tao_overrides)
    mapping = _convert_and_load(fam, backbone, hf, tao)

    size = _image_size({"image_size": image_size} if image_size is not None else cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch_size, cfg.get("num_channels", 3), *size, generator=gen)

    with torch.no_grad(), _trace(hf) as hf_ran, _capture_features(hf, rules.hf_features) as hf_feat:
        hf_logits = hf(pixel_values=x).logits
    with torch.no_grad(), _trace(tao) as tao_ran, _capture_head_input(tao) as tao_feat:
        tao_logits = tao(x)
        pre_logits = tao.forward_pre_logits(x) if hasattr(tao, "forward_pre_logits") else None
    compare_logits = mapping.skipped_head is None

    def distances(tao_features: torch.Tensor, logits: torch.Tensor) -> tuple[float, float | None]:
        hf_f, tao_f = hf_feat["value"].reshape(batch_size, -1), tao_features.reshape(batch_size, -1)
        if hf_f.shape != tao_f.shape:
            raise ParityError(f"feature shapes differ: HF {tuple(hf_f.shape)} vs TAO {tuple(tao_f.shape)}")
        feat = (hf_f - tao_f).abs().max().item()
        return feat, (hf_logits - logits).abs().max().item() if compare_logits else None

    max_feat, max_logits = distances(tao_feat["value"], tao_logits)
    findings: list[str] = []
    if not compare_logits:
        findings.append(f"logits not compared: head skipped ({mapping.skipped_head.reason})")
    if math.isnan(max_feat):
        findings.append("features contain NaN")

    # Norm eps is not a weight: report it, then measure again with TAO's eps set to HF's.
    eps_pairs = _eps_mismatches(hf, tao, mapping)
    findings += _eps_findings(eps_pairs)
    aligned_feat = aligned_logits = None
    if eps_pairs:
        with _eps_aligned(tao, eps_pairs), torch.no_grad(), _capture_head_input(tao) as aligned:
            aligned_out = tao(x)
        aligned_feat, aligned_logits = distances(aligned["value"], aligned_out)

    findings += _activation_findings(hf, tao, hf_ran, tao_ran)
    findings += _dead_findings(mapping, hf_ran, tao_ran)
    findings += _pre_logits_findings(tao, pre_logits, tao_feat["value"], tol)
    findings += [f"TAO tensors constant-filled ({k}): {why}" for k, why in _dedupe(mapping.filled)]
    findings += [f"HF tensors not converted ({k}): {why}" for k, why in _dedupe(mapping.ignored)]
    if aligned_feat is None:
        final = (max_feat, max_logits)
    else:
        final = (aligned_feat, aligned_logits)
    if not _within(*final, tol):
        findings.append(_first_divergence(hf, tao, mapping, x, tol))

    return ParityResult(
        family=fam.name,
        backbone=backbone,
        hf_class=type(hf).__name__,
        tao_class=type(tao).__name__,
        max_abs_features=max_feat,
        max_abs_logits=max_logits,
        n_params=sum(p.numel() for p in tao.parameters()),
        mapping=mapping,
        findings=findings,
        eps_aligned_features=aligned_feat,
        eps_aligned_logits=aligned_logits,
        tol=tol,
        input_shape=tuple(x.shape),
        tao_overrides=overrides,
        seconds=time.perf_counter() - started,
    )


def _build_pair(fam: Family, backbone: str, config: Any, seed: int, tao_overrides: Mapping[str, Any] | None):
    """(HF model with perturbed random weights, TAO model, TAO constructor overrides used)."""
    cfg = config.to_dict()
    torch.manual_seed(seed)
    hf = load_object(f"transformers:{CLASSIFICATION.hf_auto_class}").from_config(config).eval()
    randomize_(hf, seed)
    overrides: dict[str, Any] = {}
    variant = fam.match(cfg)
    if variant is None or variant.backbone != backbone:
        variant = _sized(fam, cfg)  # a size the catalog generates with the config's own geometry
    if variant is not None and variant.backbone == backbone:
        overrides.update(variant.backbone_kwargs)
        target = backbone_target(backbone, strategy=variant.strategy, timm_name=variant.timm_name or "",
                                 family=fam.name)
    else:  # reduced config: derive the TAO geometry from it
        overrides.update({kwarg: fn(cfg) for kwarg, fn in fam.backbone_rules.tao_kwargs})
        # A backbone tao-scaffold generates (timm_subclass) is its timm architecture, state-dict-wise.
        generated = next(
            (v for v in fam.variants if v.backbone == backbone and v.strategy == "timm_subclass"), None
        )
        target = f"timm:{generated.timm_name}" if generated and generated.timm_name else backbone
    overrides.update(tao_overrides or {})
    tao = build_tao_model(target, hf.config.num_labels, overrides).eval()
    return hf, tao, overrides


def _sized(fam: Family, cfg: Mapping[str, Any]):
    try:
        return fam.sized(cfg)
    except ValueError:
        return None


def backbone_target(backbone: str, *, strategy: str = "reuse", timm_name: str = "", family: str = "") -> str:
    """What :func:`build_tao_model` builds for a port's backbone: the TAO registry name (reuse), ``timm:<name>``
    (timm_subclass: the timm architecture the generated module subclasses) or ``class:<family>`` (tao_class: TAO's
    own class of the family, ``catalog.AnySize.cls``); a generated backbone takes its ``backbone_kwargs``."""
    if strategy == "timm_subclass" and timm_name:
        return f"timm:{timm_name}"
    if strategy == "tao_class":
        return f"class:{family}"
    return backbone


def _build_tao_class(family_name: str, num_classes: int, kwargs: Mapping[str, Any]) -> nn.Module:
    """TAO's class of ``family_name`` with the geometry ``kwargs``: what a generated tao_class module builds."""
    import importlib  # pylint: disable=import-outside-toplevel

    from scaffolder.catalog import family_named  # pylint: disable=import-outside-toplevel

    family = family_named(family_name)
    spec = family.any_size if family else None
    if spec is None or spec.strategy != "tao_class":
        raise ParityError(f"family {family_name!r} generates no tao_class backbone")
    kwargs = dict(kwargs)
    for key, module in spec.class_kwargs.items():  # plan data names the class (e.g. ResNet's block)
        if isinstance(kwargs.get(key), str):
            kwargs[key] = getattr(importlib.import_module(module), kwargs[key])
    return load_object(spec.cls)(**{**kwargs, "num_classes": num_classes})


def _convert_and_load(family: Family, backbone: str, hf: nn.Module, tao: nn.Module) -> WeightMapping:
    """Derive the mapping from the two state dicts (HF's under its checkpoint names), convert HF's weights and
    load them into ``tao``."""
    hf_sd, in_memory = checkpoint_view(hf)
    mapping = derive_mapping(hf_sd, tao.state_dict(), family)
    mapping.hf_in_memory = in_memory
    if not mapping.ok:
        raise ParityError(f"{family.name} -> {backbone}: mapping incomplete: {mapping.problems()}")
    converted = apply_mapping(hf_sd, mapping.table())
    strict = mapping.skipped_head is None and not mapping.computed
    result = tao.load_state_dict(converted, strict=strict)
    if not strict:
        leftover = set(result.missing_keys) - set(mapping.skipped_head.tao_keys if mapping.skipped_head else ())
        leftover -= set(mapping.computed)
        if leftover or result.unexpected_keys:
            raise ParityError(
                f"load_state_dict: missing {sorted(leftover)}, unexpected {result.unexpected_keys}"
            )
    return mapping


@contextmanager
def _eps_aligned(tao: nn.Module, eps_pairs: dict[tuple, list[tuple[str, str]]]):
    """Temporarily give the mapped TAO norms HF's eps."""
    modules = dict(tao.named_modules())
    saved = []
    for (_hf_cls, hf_eps, _tao_cls, tao_eps), pairs in eps_pairs.items():
        for _hf_name, tao_name in pairs:
            saved.append((modules[tao_name], tao_eps))
            modules[tao_name].eps = hf_eps
    try:
        yield
    finally:
        for module, eps in saved:
            module.eps = eps


def _pre_logits_findings(tao: nn.Module, pre_logits, head_input: torch.Tensor, tol: float) -> list[str]:
    if pre_logits is None:
        return []
    name = type(tao).__name__
    if tuple(pre_logits.shape) != tuple(head_input.shape):
        return [
            f"TAO {name}.forward_pre_logits returns {tuple(pre_logits.shape)}, not the classifier input "
            f"{tuple(head_input.shape)}; the classifier input was compared"
        ]
    if (pre_logits - head_input).abs().max().item() > tol:
        return [f"TAO {name}.forward_pre_logits differs from the classifier input"]
    return []


def randomize_(model: nn.Module, seed: int) -> None:
    """Seeded random weights in place: the one randomiser verify's hf_parity probe uses too."""
    from scaffolder.verify.probes._common import randomize  # pylint: disable=import-outside-toplevel

    randomize(model, seed)


def build_tao_model(backbone: str, num_classes: int, overrides: Mapping[str, Any] | None = None) -> nn.Module:
    """Instantiate ``backbone`` (TAO registry name or ``timm:<name>``) with ``num_classes``.

    ``overrides`` replace constructor arguments the registry factory fixes (embed_dim, depths, ...): the
    factory still runs (so every other argument it passes is TAO's), with its backbone class wrapped.
    """
    overrides = dict(overrides or {})
    if backbone.startswith("class:"):
        return _build_tao_class(backbone[len("class:"):], num_classes, overrides)
    if backbone.startswith("timm:"):
        import timm  # pylint: disable=import-outside-toplevel

        return timm.create_model(backbone[5:], pretrained=False, num_classes=num_classes, **overrides)
    from nvidia_tao_pytorch.cv.backbone_v2 import BACKBONE_REGISTRY  # pylint: disable=import-outside-toplevel
    from nvidia_tao_pytorch.cv.backbone_v2.backbone_base import (  # pylint: disable=import-outside-toplevel
        BackboneBase,
    )

    factory = BACKBONE_REGISTRY.get(backbone)
    if not overrides:
        return factory(num_classes=num_classes)
    module = sys.modules[factory.__module__]
    names = [
        n
        for n in factory.__code__.co_names
        if isinstance(getattr(module, n, None), type) and issubclass(getattr(module, n), BackboneBase)
    ]
    if len(names) != 1:
        raise ParityError(f"cannot find the backbone class {backbone} builds (candidates: {names})")
    cls = getattr(module, names[0])

    def build(*args, **kwargs):
        kwargs.update(overrides)
        return cls(*args, **kwargs)

    with mock.patch.object(module, names[0], build):
        return factory(num_classes=num_classes)


def _as_config(hf_config: Any):
    if isinstance(hf_config, Mapping):
        from transformers import AutoConfig  # pylint: disable=import-outside-toplevel

        data = dict(hf_config)
        return AutoConfig.for_model(data.pop("model_type"), **data)
    return hf_config


def _family(family: Family | str | None, model_type: str) -> Family:
    if isinstance(family, Family):
        return family
    found = None
    if isinstance(family, str):
        try:
            found = resolve_family(family)
        except KeyError:
            found = None
    elif model_type:
        found = family_for(model_type)
    if found is None:
        raise ParityError(f"no catalog family for {family or model_type!r}")
    return found


def _image_size(cfg: Mapping[str, Any]) -> tuple[int, int]:
    size = cfg.get("image_size", 224)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


@contextmanager
def _capture_features(hf: nn.Module, source: str):
    store: dict[str, torch.Tensor] = {}
    if source == "classifier_input":
        head = getattr(hf, "classifier", None)
        if not isinstance(head, nn.Module):
            raise ParityError(f"{type(hf).__name__} has no `classifier` module; set key_rules.hf_features")
        handle = head.register_forward_pre_hook(lambda _m, args: store.__setitem__("value", args[0].detach()))
    elif source == "pooler_output":
        base = hf.base_model

        def grab(_m, _args, output):
            store["value"] = output.pooler_output.detach()

        handle = base.register_forward_hook(grab)
    elif source.startswith("tokens:"):
        indices = [int(i) for i in source[len("tokens:") :].split(",")]

        def grab_tokens(_m, _args, output):
            store["value"] = output.last_hidden_state[:, indices].mean(dim=1).detach()

        handle = hf.base_model.register_forward_hook(grab_tokens)
    else:
        raise ParityError(f"unknown hf_features {source!r}")
    try:
        yield store
    finally:
        handle.remove()


@contextmanager
def _capture_head_input(tao: nn.Module):
    """What TAO feeds its classifier: the input of ``get_classifier()``, or timm's ``forward_head(pre_logits=True)``
    where the classifier is not one module (e.g. DeiT's head + head_dist)."""
    store: dict[str, torch.Tensor] = {}
    head = tao.get_classifier() if hasattr(tao, "get_classifier") else None
    if isinstance(head, nn.Module) and not isinstance(head, nn.Identity):
        handle = head.register_forward_pre_hook(lambda _m, args: store.__setitem__("value", args[0].detach()))
    elif hasattr(tao, "forward_head") and hasattr(tao, "forward_features"):

        def grab(_m, _args, _output):
            if "value" not in store:
                with torch.no_grad():
                    store["value"] = tao.forward_head(
                        tao.forward_features(_args[0]), pre_logits=True
                    ).detach()

        handle = tao.register_forward_hook(grab)
    else:
        raise ParityError(
            f"{type(tao).__name__}: cannot locate the classifier input (no get_classifier module)"
        )
    try:
        yield store
    finally:
        handle.remove()


@contextmanager
def _trace(model: nn.Module):
    """Names of the submodules whose forward ran (only the first forward call is recorded)."""
    ran: set[str] = {""}
    recording = {"on": True}
    handles = []
    for name, module in model.named_modules():
        if name:
            handles.append(
                module.register_forward_hook(
                    lambda _m, _a, _o, n=name: ran.add(n) if recording["on"] else None
                )
            )
    outer = model.register_forward_hook(lambda *_: recording.__setitem__("on", False))
    try:
        yield ran
    finally:
        outer.remove()
        for h in handles:
            h.remove()


def _module_of(key: str) -> str:
    return key.rsplit(".", 1)[0] if "." in key else ""


def _eps_mismatches(
    hf: nn.Module, tao: nn.Module, mapping: WeightMapping
) -> dict[tuple, list[tuple[str, str]]]:
    """(HF class, HF eps, TAO class, TAO eps) -> [(HF module, TAO module)] for mapped norms whose eps differ."""
    hf_mods, tao_mods = dict(hf.named_modules()), dict(tao.named_modules())
    groups: dict[tuple, list[tuple[str, str]]] = {}
    for entry in mapping.entries:
        if len(entry.hf_keys) != 1 or not entry.tao_key.endswith(".weight"):
            continue
        hf_name, tao_name = mapping.hf_module(entry.hf_keys[0]), _module_of(entry.tao_key)
        hm, tm = hf_mods.get(hf_name), tao_mods.get(tao_name)
        he, te = getattr(hm, "eps", None), getattr(tm, "eps", None)
        if isinstance(he, float) and isinstance(te, float) and not math.isclose(he, te, rel_tol=1e-9):
            groups.setdefault((type(hm).__name__, he, type(tm).__name__, te), []).append((hf_name, tao_name))
    return groups


def _eps_findings(groups: dict[tuple, list[tuple[str, str]]]) -> list[str]:
    out = []
    for (hcls, he, tcls, te), pairs in groups.items():
        example = f"{pairs[0][0]} -> {pairs[0][1]}"
        out.append(
            f"norm eps differs on {len(pairs)} module(s): HF {hcls} eps={he:g} vs TAO {tcls} eps={te:g} "
            f"(e.g. {example}); weights cannot fix this"
        )
    return out


def _activation_kind(module: nn.Module) -> str | None:
    name = type(module).__name__
    if isinstance(module, nn.GELU):
        return "gelu_tanh" if module.approximate == "tanh" else "gelu"
    table = {
        "GELUActivation": "gelu",
        "NewGELUActivation": "gelu_tanh",
        "GELUTanh": "gelu_tanh",
        "PytorchGELUTanh": "gelu_tanh",
        "FastGELUActivation": "gelu_tanh",
        "QuickGELUActivation": "quick_gelu",
        "ReLU": "relu",
        "ReLU6": "relu6",
        "SiLU": "silu",
        "SiLUActivation": "silu",
        "Hardswish": "hardswish",
        "Sigmoid": "sigmoid",
        "Tanh": "tanh",
    }
    return table.get(name)


def _activation_findings(hf, tao, hf_ran, tao_ran) -> list[str]:
    def kinds(model, ran):
        return {k for n, m in model.named_modules() if n in ran and (k := _activation_kind(m))}

    hk, tk = kinds(hf, hf_ran), kinds(tao, tao_ran)
    if hk and tk and hk != tk:  # an empty set means "functional activations only", i.e. unknown
        return [f"activation modules differ: HF runs {sorted(hk)}, TAO runs {sorted(tk)}"]
    return []


def _dead_findings(mapping: WeightMapping, hf_ran: set[str], tao_ran: set[str]) -> list[str]:
    """HF modules run by HF's forward none of whose TAO counterparts is run by TAO's forward."""
    targets: dict[str, set[str]] = {}
    for entry in mapping.entries:
        for key in entry.hf_keys:
            targets.setdefault(mapping.hf_module(key), set()).add(_module_of(entry.tao_key))
    dead = [
        f"{hf_mod} -> {'/'.join(sorted(tao_mods))}"
        for hf_mod, tao_mods in targets.items()
        if hf_mod in hf_ran and not tao_mods & tao_ran
    ]
    if not dead:
        return []
    return [
        f"computation dropped: {len(dead)} HF module(s) run in HF's forward but their TAO counterparts do not run "
        f"in TAO's forward ({'; '.join(dead[:4])}{' ...' if len(dead) > 4 else ''}); outputs cannot match"
    ]


def _first_output(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return getattr(output, "last_hidden_state", None)


def _first_divergence(
    hf: nn.Module, tao: nn.Module, mapping: WeightMapping, x: torch.Tensor, tol: float
) -> str:
    """Run both models again, comparing the outputs of module pairs the mapping ties together (same shape only)."""
    pairs: dict[str, str] = {}
    for entry in mapping.entries:
        if len(entry.hf_keys) == 1 and entry.ops[0][0] == "copy":
            hf_mod, tao_mod = mapping.hf_module(entry.hf_keys[0]), _module_of(entry.tao_key)
            if hf_mod and tao_mod:
                pairs.setdefault(hf_mod, tao_mod)
    hf_mods, tao_mods = dict(hf.named_modules()), dict(tao.named_modules())
    # Leaf modules only (Linear, Conv, norms): their outputs mean the same thing on both sides.
    pairs = {
        h: t
        for h, t in pairs.items()
        if h in hf_mods
        and t in tao_mods
        and not any(True for _ in hf_mods[h].children())
        and not any(True for _ in tao_mods[t].children())
    }
    hf_out: dict[str, torch.Tensor] = {}
    order: list[str] = []
    diffs: dict[str, float] = {}
    handles = []

    def keep(name):
        def hook(_m, _a, output):
            value = _first_output(output)
            if name not in hf_out and value is not None:
                hf_out[name] = value.detach()
                order.append(name)

        return hook

    def compare(name):
        def hook(_m, _a, output):
            value = _first_output(output)
            ref = hf_out.get(name)
            if name not in diffs and value is not None and ref is not None and ref.shape == value.shape:
                diffs[name] = (ref - value).abs().max().item()

        return hook

    tao_to_hf = {}
    for hf_name, tao_name in pairs.items():
        if hf_name in hf_mods and tao_name in tao_mods:
            handles.append(hf_mods[hf_name].register_forward_hook(keep(hf_name)))
            tao_to_hf.setdefault(tao_name, hf_name)
    for tao_name, hf_name in tao_to_hf.items():
        handles.append(tao_mods[tao_name].register_forward_hook(compare(hf_name)))
    try:
        with torch.no_grad():
            hf(pixel_values=x)
            tao(x)
    finally:
        for h in handles:
            h.remove()
    compared = [n for n in order if n in diffs]
    bad = [n for n in compared if diffs[n] > tol]
    if not bad:
        return (
            f"mismatch located after the mapped modules: all {len(compared)} comparable module pairs agree "
            f"within {tol:g}; the difference is in unmapped computation (pooling, reshapes, attention "
            f"windows/shifts, ...)"
        )
    first = bad[0]
    agree = compared.index(first)
    return (
        f"first divergence (HF execution order): HF {first} vs TAO {pairs[first]}: max|d| {diffs[first]:.2e}; "
        f"{agree} earlier module pair(s) agree within {tol:g}; {len(bad)} of {len(compared)} pairs differ"
    )


def _dedupe(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    grouped: dict[str, list[str]] = {}
    for key, reason in pairs:
        grouped.setdefault(reason, []).append(key)
    return [
        (", ".join(keys[:3]) + (" ..." if len(keys) > 3 else ""), reason) for reason, keys in grouped.items()
    ]
