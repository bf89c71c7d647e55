"""The catalog's data model: backbone facts per family, weight facts per (family, task).

A :class:`Family` describes one HuggingFace architecture family as a *backbone*: the size variants and what
TAO calls them, preprocessing defaults, the HF -> TAO key rules of the backbone's own tensors, and the
adaptations a reused TAO backbone needs to compute what HF computes. What a *task* adds on top -- the
classifier, a segmentation decoder, a detector's neck and heads, where the backbone sits inside the TAO task
model, what HF's head consumes -- is a :class:`TaskRules` in ``Family.tasks``, keyed by task name
(``scaffolder.tasks``). A family supports exactly the tasks it lists, as optimum registers a model type
with the tasks it supports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)

T = r"(?P<t>weight|bias)"  # parameter name of a Linear/Conv/LayerNorm
BN = r"(?P<t>weight|bias|running_mean|running_var|num_batches_tracked)"  # BatchNorm state
QKV = ("query", "key", "value")


@dataclass(frozen=True)
class Variant:
    """One size of a family: the config values that identify it and what TAO calls it."""

    backbone: str  # TAO backbone_v2 registry name (or the name of a backbone tao-scaffold generates)
    num_features: int  # width of the backbone's final (pooled) feature
    signature: Mapping[str, Any]  # config.json key -> value; all must match
    strategy: str = "reuse"  # reuse | tao_class | timm_subclass | hf_wrapper
    timm_name: str | None = None  # timm architecture a generated backbone subclasses
    # Constructor arguments of a generated backbone (tao_class / timm_subclass): its geometry, spelled once here
    # and carried by the plan (PortPlan.backbone_kwargs) into the generated module.
    backbone_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnySize:
    """A size of the family that no :class:`Variant` lists: the port generates a backbone with the model's own
    geometry instead of stopping.

    ``strategy`` is ``tao_class`` (TAO has the architecture, not the size: the generated backbone_v2 entry builds
    TAO's own class ``cls``, whose keys the family's rules already map) or ``timm_subclass`` (TAO lacks the
    architecture: the timm partial's subclass of ``cls``, as timm ``timm_name`` builds it). ``kwargs`` reads
    the constructor arguments from the HF config (HF defaults filled from ``Family.signature_defaults``);
    ``name`` spells the registry name from them (and the config) -- it must encode every argument, because ports
    that share a backbone name share its module; ``refuse`` says why a config has no such backbone (None: it has
    one).
    """

    strategy: str
    cls: str  # "module:Class" the generated factory constructs
    kwargs: Callable[[Mapping[str, Any]], dict[str, Any]]
    name: Callable[[Mapping[str, Any], Mapping[str, Any]], str]  # from (the kwargs, the config)
    num_features: Callable[[Mapping[str, Any]], int]  # from the kwargs
    timm_name: Callable[[Mapping[str, Any]], str] | None = None  # from the kwargs (timm_subclass)
    refuse: Callable[[Mapping[str, Any]], str | None] = lambda _config: None
    # constructor kwargs that name a class (plan data holds its name): kwarg -> "module" holding the classes
    class_kwargs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KeyRule:
    """One HF -> TAO state-dict key rename, applied by ``scaffolder.convert.engine``.

    ``pattern`` is a regex matched (``fullmatch``) against the HF key after a base-model prefix
    (``KeyRules.hf_prefixes``) is stripped. ``target`` is a template for the TAO key: ``{g}`` is the
    named group ``g``, ``{g+1}`` / ``{g-1}`` shift a numeric group, ``{flat:a,b}`` is the rank of the
    numeric tuple (a, b) among every HF key matched by a ``flat`` rule (stage/layer -> global block
    index). A tuple of targets fans one HF tensor out to every listed TAO key that exists.
    ``concat`` lists the values of group ``part`` in the order they are concatenated (dim
    ``KeyRules.concat_dim``) into one TAO tensor: q/k/v -> qkv.
    """

    pattern: str
    target: str | tuple[str, ...]
    concat: tuple[str, ...] = ()

    def under(self, prefix: str) -> "KeyRule":
        """The same rule with its TAO target(s) inside module ``prefix`` (e.g. ``backbone.``)."""
        if not prefix:
            return self
        targets = self.target if isinstance(self.target, tuple) else (self.target,)
        moved = tuple(prefix + t for t in targets)
        return replace(self, target=moved if isinstance(self.target, tuple) else moved[0])


def rule(pattern: str, target: str | tuple[str, ...], concat: tuple[str, ...] = ()) -> KeyRule:
    return KeyRule(pattern, target, concat)


@dataclass(frozen=True)
class KeyRules:
    """What the conversion engine applies: one complete HF state dict -> TAO state dict rule set.

    A family's ``backbone_rules`` covers the backbone's tensors (TAO keys relative to the backbone module);
    :meth:`Family.key_rules` composes it with a task's :class:`TaskRules` into the rules for a whole port.
    """

    rules: tuple[KeyRule, ...]
    # Base-model prefixes ("vit."): present in *For<Task> checkpoints, absent in base-model ones.
    hf_prefixes: tuple[str, ...] = ()
    ignore: tuple[tuple[str, str], ...] = ()  # (HF key regex, why it has no TAO counterpart)
    fill: tuple[tuple[str, float, str], ...] = ()  # (TAO key regex, constant, why TAO has it and HF not)
    tao_head: str = r"$^"  # TAO task-head keys (skipped when the class count differs); none by default
    # TAO keys that start from TAO's initialisation when the HF checkpoint has none of them (a decoder a
    # backbone-only checkpoint lacks); when it has some, every one must be mapped.
    tao_fresh: str = r"$^"
    concat_dim: int = 0
    # TAO buffers its modules compute at construction (e.g. Swin's relative_position_index): converted when the
    # HF checkpoint has them, left to TAO when it does not (transformers >= 5.23 no longer saves them).
    tao_computed: tuple[str, ...] = ()
    # Parity: the HF tensor equal to the TAO head's input (see TaskRules.hf_features).
    hf_features: str = "classifier_input"
    # Parity with reduced configs: TAO/timm constructor kwarg -> function of the HF config dict.
    tao_kwargs: tuple[tuple[str, Callable[[Mapping[str, Any]], Any]], ...] = ()
    # HF ties tensors whose saved name depends on the config and the transformers version (save_pretrained keeps
    # one name per tied group): rows from such a tensor list every name of its group, the first one present wins.
    hf_tied_aliases: bool = False


@dataclass(frozen=True)
class TaskRules:
    """Weight facts of one (family, task): the head/neck/decoder rules and where the backbone sits.

    ``rules`` have absolute TAO targets (in the TAO task model); the family's backbone rules are added with
    their targets under ``tao_backbone_prefix`` unless ``include_backbone_rules`` is off (a whole-model
    family whose rules already cover its backbone, e.g. a detector).
    """

    rules: tuple[KeyRule, ...] = ()
    tao_backbone_prefix: str = ""
    hf_prefixes: tuple[str, ...] = ()
    ignore: tuple[tuple[str, str], ...] = ()
    fill: tuple[tuple[str, float, str], ...] = ()
    tao_head: str = r"$^"
    # Parity: the HF tensor equal to TAO's head input. "classifier_input" (what HF feeds its ``classifier``),
    # "pooler_output" (base-model output) or "tokens:i,j" (mean of those tokens' final hidden states).
    hf_features: str = "classifier_input"
    include_backbone_rules: bool = True
    notes: str = ""
    tao_fresh: str = r"$^"  # see KeyRules.tao_fresh
    # (HF config.json, preprocessor_config.json) -> the port's task_params (scaffolder.tasks.TaskSpec.params);
    # raises UnsupportedModelError for a config the TAO network cannot represent. None: the task's defaults.
    plan_params: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]] | None = None
    hf_tied_aliases: bool = False  # see KeyRules.hf_tied_aliases
    # Family.hf_adaptations this task's port does not apply (they change what only another task computes)
    skip_adaptations: tuple[str, ...] = ()
    # The backbone this task generates instead of the family's own (e.g. a feature pyramid around a plain ViT):
    # (family, HF config.json) -> (its Variant, why: shown in the plan); raises ValueError when the config has none.
    # None: the family's variant as it is.
    backbone_variant: Callable[["Family", Mapping[str, Any]], tuple[Variant, str]] | None = None
    # The task network takes its backbone from its own registry: the port's strategy there ("" keeps the variant's;
    # "generated": the port's model/backbone.py registers it) and why ({backbone}, {geometry}; shown in the plan).
    backbone_strategy: str = ""
    backbone_reason: str = ""
    # "module:REGISTRY" of the task network's own backbone registry: a size no variant lists is ported when the
    # registry has the name the family's AnySize spells for it (TAO's class, registered there), else refused.
    registry: str = ""
    # Lines the plan's mapping notes (and the converter's header) carry for this task: what starts fresh, what the
    # parity compares.
    plan_notes: tuple[str, ...] = ()
    export_notes: tuple[str, ...] | None = None  # this task's export caveats (None: the family's export_notes)


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    variants: tuple[Variant, ...]
    # task name -> what that task adds; the tasks this family can be ported as.
    tasks: Mapping[str, TaskRules] = field(default_factory=dict)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    default_image_size: int = 224
    export_notes: tuple[str, ...] = ()
    notes: str = ""
    # Why a variant with no TAO equivalent gets the strategy it gets (shown in the plan).
    missing_reason: str = ""
    # Why a "reuse" variant is TAO's own (shown in the plan); default: the backbone_v2 registry has it.
    reuse_reason: str = ""
    # Changes the port's build_model makes so a reused TAO backbone computes what the HF model computes
    # (blueprints/_partials/backbone/hf_adaptations.py.jinja implements each name).
    hf_adaptations: tuple[str, ...] = ()
    # HF backbone tensors -> TAO backbone tensors; None: weight conversion not supported yet.
    backbone_rules: KeyRules | None = None
    # Sizes no variant lists (classification ports): a backbone generated with the model's own geometry.
    any_size: AnySize | None = None

    # config.json key holding the backbone's own config (detectors: "backbone_config"); variants match inside it
    signature_source: str = ""
    # HF's defaults for signature keys a config.json may omit (save_pretrained writes only non-defaults)
    signature_defaults: Mapping[str, Any] = field(default_factory=dict)

    def _signature_config(self, config: Mapping[str, Any]) -> Mapping[str, Any]:
        nested = config.get(self.signature_source) if self.signature_source else config
        return {**self.signature_defaults, **(nested if isinstance(nested, Mapping) else {})}

    def match(self, config: Mapping[str, Any]) -> Variant | None:
        config = self._signature_config(config)
        for variant in self.variants:
            if all(_normalise(config.get(key)) == _normalise(value) for key, value in variant.signature.items()):
                return variant
        return None

    def sized(self, config: Mapping[str, Any]) -> Variant | None:
        """The generated backbone for a size no variant lists (None: the family generates none).

        Raises ``ValueError`` with the reason when the config's geometry cannot be built (``AnySize.refuse``)."""
        spec = self.any_size
        if spec is None:
            return None
        config = self._signature_config(config)
        try:
            why = spec.refuse(config)
            kwargs = None if why else spec.kwargs(config)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            why = str(exc) if isinstance(exc, ValueError) else f"config.json lacks or mistypes {exc}"
        if why:
            raise ValueError(why)
        return Variant(
            backbone=spec.name(kwargs, config),
            num_features=int(spec.num_features(kwargs)),
            signature={},
            strategy=spec.strategy,
            timm_name=spec.timm_name(kwargs) if spec.timm_name else None,
            backbone_kwargs=kwargs,
        )

    def describe_config(self, config: Mapping[str, Any]) -> str:
        config = self._signature_config(config)
        keys = sorted({k for v in self.variants for k in v.signature})
        where = f"{self.signature_source}." if self.signature_source else ""
        return ", ".join(f"{where}{k}={config.get(k)!r}" for k in keys)

    def supports(self, task: str) -> bool:
        return task in self.tasks

    def key_rules(self, task: str) -> KeyRules | None:
        """The complete rules for a ``task`` port of this family (None: no conversion rules)."""
        spec = self.tasks.get(task)
        if spec is None or (spec.include_backbone_rules and self.backbone_rules is None):
            return None
        base = self.backbone_rules if spec.include_backbone_rules else None
        prefix = spec.tao_backbone_prefix
        return KeyRules(
            rules=spec.rules + (tuple(r.under(prefix) for r in base.rules) if base else ()),
            hf_prefixes=(base.hf_prefixes if base else ()) + spec.hf_prefixes,
            ignore=spec.ignore + (base.ignore if base else ()),
            fill=spec.fill + (tuple((re.escape(prefix) + p, v, why) for p, v, why in base.fill) if base else ()),
            tao_head=spec.tao_head,
            tao_fresh=spec.tao_fresh,
            concat_dim=base.concat_dim if base else 0,
            tao_computed=tuple(re.escape(prefix) + p for p in base.tao_computed) if base else (),
            hf_features=spec.hf_features,
            tao_kwargs=base.tao_kwargs if base else (),
            hf_tied_aliases=spec.hf_tied_aliases,
        )


def _normalise(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def variant(backbone: str, num_features: int, **signature: Any) -> Variant:
    return Variant(backbone=backbone, num_features=num_features, signature=signature)


def classifier(*head_rules: KeyRule, tao_head: str = r"head\..*", hf_features: str = "classifier_input",
               ignore: tuple[tuple[str, str], ...] = ()) -> TaskRules:
    """The classification task of a backbone family: the backbone is the model, plus its linear head."""
    return TaskRules(rules=head_rules, tao_head=tao_head, hf_features=hf_features, ignore=ignore)


CLASSIFIER_HEAD = rule(rf"classifier\.{T}", "head.{t}")  # HF `classifier` Linear -> TAO backbone_v2 `head`


RTDETR_REGISTRY = "nvidia_tao_pytorch.cv.rtdetr.model.backbone.registry:RTDETR_BACKBONE_REGISTRY"
RTDETR_REGISTERED = "TAO's RTDETR_BACKBONE_REGISTRY registers {backbone}, matching {geometry}"


def detection_backbone(ignore: tuple[tuple[str, str], ...] = (), *, tao_fresh: str = r"$^",
                       hf_features: str = "feature_pyramid", tao_backbone_prefix: str = "",
                       notes: str = "", backbone_strategy: str = "",
                       backbone_reason: str = RTDETR_REGISTERED,
                       export_notes: tuple[str, ...] | None = None) -> TaskRules:
    """A backbone family under TAO's RT-DETR (``RTDETR_BACKBONE_REGISTRY``): only the backbone is converted, for
    ``model.pretrained_backbone_path`` (keys relative to the backbone); encoder, decoder and heads start fresh.

    ``tao_fresh``: backbone tensors of the registry entry HF has no counterpart of (they start fresh too);
    ``hf_features``: what the backbone parity compares -- ``feature_pyramid`` (HF ``hidden_states[2:5]`` vs the
    entry's ``forward_feature_pyramid``) or ``feature_pyramid:hf=A,B,C;tao=X,Y,Z`` where each side lists the
    modules whose input (``name<``) or output (``name>``) is a level (HF names under the base model, TAO names
    under the backbone; a side left out keeps its default); ``tao_backbone_prefix``: where the backbone_v2 model
    sits in a generated wrapper; ``notes``: what else starts fresh and what the parity compares (a plan note);
    ``backbone_strategy`` / ``backbone_reason`` / ``export_notes``: see :class:`TaskRules` (default: TAO's registry
    has the variant; the family's export notes).
    """
    from scaffolder.catalog.detection_params import backbone_route_params  # pylint: disable=import-outside-toplevel

    return TaskRules(ignore=ignore, hf_features=hf_features, plan_params=backbone_route_params, tao_fresh=tao_fresh,
                     tao_backbone_prefix=tao_backbone_prefix, backbone_strategy=backbone_strategy,
                     backbone_reason=backbone_reason, export_notes=export_notes, registry="" if backbone_strategy else RTDETR_REGISTRY,
                     plan_notes=tuple(n for n in ("backbone weights converted; RT-DETR's encoder, decoder and heads "
                                                  "start from TAO's initialisation", notes) if n))


SEGFORMER_BACKBONE_PREFIX = "backbone."  # TAO SegFormer: self.backbone (backbone_v2) + self.decoder (TAOSegFormerHead)
SEGFORMER_DECODER = r"decoder\..*"


def under_segformer(pyramid_channels: Callable[[Mapping[str, Any]], list[int]], hf_features: str,
                    ignore: tuple[tuple[str, str], ...] = (), rules: tuple[KeyRule, ...] = (),
                    skip_adaptations: tuple[str, ...] = ()) -> TaskRules:
    """The segmentation task of a backbone family: its backbone under TAO's SegFormer decoder, which starts
    fresh (HF classification/backbone checkpoints have no SegFormer decoder). ``pyramid_channels``: the widths
    of the backbone's 4 feature maps from the HF config; ``hf_features``: which HF hidden states they are
    (``hidden_states:1,2,3,4`` = the base model's ``hidden_states`` at those indices, NCHW; a trailing ``:nhwc``
    says they are channels-last; ``stage_outputs:<norm>,...`` = each encoder stage's output before downsampling
    through a norm: ``unit`` a LayerNorm of unit weight and zero bias, else that module of the base model --
    see scaffolder/verify/probes/hf_parity_segmentation.py). ``rules``: task rules for backbone tensors the
    family's backbone rules leave to the classification head (absolute TAO targets); ``skip_adaptations``: the
    family's HF adaptations that concern only pooled (classification) features."""
    return TaskRules(
        rules=rules,
        skip_adaptations=skip_adaptations,
        tao_backbone_prefix=SEGFORMER_BACKBONE_PREFIX,
        ignore=((r"classifier\..*", "the HF classifier head; the SegFormer decoder starts fresh"), *ignore),
        tao_fresh=SEGFORMER_DECODER,
        hf_features=hf_features,
        plan_params=lambda c, _pre=None: {"pyramid_channels": [int(w) for w in pyramid_channels(c)], "decoder_source": "fresh"},
        notes="backbone converted; TAO's SegFormer decoder (TAOSegFormerHead) starts fresh",
    )


# -- spelling generated backbone names (AnySize.name): every constructor argument that varies is in the name ----
def name_token(value: Any) -> str:
    """A geometry value as a name fragment: 2.5 -> 2p5, [2, 2, 6, 2] -> 2x2x6x2."""
    if isinstance(value, (list, tuple)):
        return "x".join(name_token(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}".replace(".", "p").replace("-", "m").replace("+", "")
    return str(value)


def mlp_ratio(intermediate: int, hidden: int) -> float:
    """timm's mlp_ratio for an HF intermediate width (timm builds int(hidden * ratio)); ValueError if it cannot."""
    ratio = float(intermediate) / float(hidden)
    if int(hidden * ratio) != int(intermediate):
        raise ValueError(f"intermediate_size {intermediate} is not int({hidden} * mlp_ratio) for any ratio timm takes")
    return ratio


def square_image_size(config: Mapping[str, Any]) -> int:
    size = config.get("image_size")
    if isinstance(size, (list, tuple)) and len(size) == 2 and size[0] == size[1]:
        size = size[0]
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"image_size {size!r} is not one square size")
    return size
