"""Convert-weights core: an HF checkpoint on disk -> a TAO backbone state dict (the CLI wires this up)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from scaffolder.catalog import Family, KeyRules
from scaffolder.convert.engine import WeightMapping, derive_mapping, resolve_rules, schema_of
from scaffolder.tasks import CLASSIFICATION
from scaffolder.convert.runtime import apply_mapping, load_hf_state_dict, tao_checkpoint
from scaffolder.errors import ModelSourceError, ScaffoldError


class WeightConversionError(ScaffoldError):
    """The HF checkpoint does not cover the TAO model (or vice versa); carries the full key lists."""

    def __init__(self, message: str, hint: str | None = None, *, mapping: WeightMapping | None = None):
        super().__init__(message, hint)
        self.mapping = mapping
        self.missing = list(mapping.missing) if mapping else []
        self.unexpected = list(mapping.unexpected) if mapping else []
        self.shape_errors = list(mapping.shape_errors) if mapping else []


@dataclass
class ConversionReport:
    family: str
    source: str
    num_classes: int
    mapping: WeightMapping
    hf_tensors: int
    tao_tensors: int
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"converted {self.source}: {self.mapping.summary()}"]
        lines.append(
            f"HF tensors: {self.hf_tensors} read, {len(self.mapping.hf_keys_used())} used, "
            f"{len(self.mapping.ignored)} ignored; TAO tensors written: {self.tao_tensors}"
        )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def convert_checkpoint(
    hf_weights: Path | str,
    family: Family | KeyRules | str,
    tao_state_dict_schema: Mapping[str, Any],
    *,
    num_classes: int,
    task: str = CLASSIFICATION.name,
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Read ``hf_weights`` (safetensors/bin file or model dir) and build the TAO state dict.

    ``tao_state_dict_schema``: the TAO backbone's ``state_dict()`` or ``{key: shape}``. Head tensors are
    sized for ``num_classes``; when the HF classifier has another class count the head is left out and
    the report says so. Raises ``WeightConversionError`` listing missing / unexpected / mis-shaped keys.
    """
    name, rules = resolve_rules(family, task)
    try:
        hf_sd = load_hf_state_dict(hf_weights)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelSourceError(f"cannot read HF weights {hf_weights}: {exc}") from exc
    tao_schema = schema_of(tao_state_dict_schema)
    head_re = re.compile(rules.tao_head)
    for key, shape in tao_schema.items():
        if head_re.fullmatch(key) and shape:
            tao_schema[key] = (num_classes,) + shape[1:]
    mapping = derive_mapping(schema_of(hf_sd), tao_schema, family, task)
    if not mapping.ok:
        raise WeightConversionError(
            f"HF checkpoint {os.fspath(hf_weights)} does not cover the TAO {name} backbone: {mapping.problems()}",
            hint="check that the checkpoint and the TAO backbone are the same architecture and size",
            mapping=mapping,
        )
    state_dict = apply_mapping(hf_sd, mapping.table())
    notes = []
    if mapping.skipped_head:
        notes.append(
            f"classifier head not converted ({mapping.skipped_head.reason}); "
            f"TAO initialises {', '.join(mapping.skipped_head.tao_keys)} when it builds the model"
        )
    for key, reason in mapping.filled:
        notes.append(f"{key} constant-filled: {reason}")
    report = ConversionReport(
        family=name,
        source=os.fspath(hf_weights),
        num_classes=num_classes,
        mapping=mapping,
        hf_tensors=len(hf_sd),
        tao_tensors=len(state_dict),
        notes=notes,
    )
    return state_dict, report


def save_tao_checkpoint(state_dict: Mapping[str, torch.Tensor], path: Path | str, tao_model: str) -> dict[str, Any]:
    """Write ``state_dict`` as TAO's loader for ``tao_model`` reads it; returns the saved object."""
    checkpoint = tao_checkpoint(dict(state_dict), tao_model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, os.fspath(path))
    return checkpoint
