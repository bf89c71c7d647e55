"""Derive an explicit HF -> TAO weight mapping from two state-dict schemas and a family's key rules.

One engine, no per-model tables: the family's declarative ``KeyRules`` (``scaffolder.catalog``) rename
HF keys; the engine groups the renamed keys per TAO key, infers the structural transform from the
rules and the shapes (``concat`` for q/k/v -> qkv, ``reshape`` where only singleton dims differ),
and verifies the result against the TAO model's own state dict (keys *and* shapes). What does not
line up is reported, never guessed: ``missing`` (TAO keys with no source), ``unexpected`` (HF keys no
rule used), ``shape_errors``, and ``skipped_head`` when the classifier cannot carry over.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from scaffolder.catalog import Family, KeyRules, family_for, family_named
from scaffolder.tasks import CLASSIFICATION

Shape = tuple[int, ...]
Row = tuple[str, tuple[str, ...], tuple[tuple[str, Any], ...]]

_FIELD = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class MappingEntry:
    """``tao_key <- ops(hf_keys)``: one row of the mapping table."""

    tao_key: str
    hf_keys: tuple[str, ...]
    ops: tuple[tuple[str, Any], ...]
    shape: Shape  # TAO shape the ops produce

    def row(self) -> Row:
        return (self.tao_key, self.hf_keys, self.ops)


@dataclass(frozen=True)
class HeadSkip:
    reason: str
    tao_keys: tuple[str, ...]
    hf_keys: tuple[str, ...]


@dataclass
class WeightMapping:
    family: str
    entries: list[MappingEntry]
    missing: list[str] = field(default_factory=list)  # TAO keys with no source
    unexpected: list[str] = field(default_factory=list)  # HF keys nothing used
    unexpected_hints: dict[str, str] = field(default_factory=dict)  # HF key -> why it is unused
    shape_errors: list[str] = field(default_factory=list)
    skipped_head: HeadSkip | None = None
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (HF key, reason) declared by the family
    filled: list[tuple[str, str]] = field(default_factory=list)  # (TAO key, reason) constant-initialised
    computed: list[str] = field(default_factory=list)  # TAO buffers TAO computes itself; HF gave no value
    # HF checkpoint key -> the installed transformers' in-memory key, where they differ (transformers >= 5.9
    # renames modules in memory; checkpoints keep the old names). Diagnostics map back to HF modules with it.
    hf_in_memory: dict[str, str] = field(default_factory=dict)
    # TAO keys of a group the HF checkpoint has no part of (KeyRules.tao_fresh): they keep TAO's initialisation
    fresh: list[str] = field(default_factory=list)

    def hf_module(self, hf_key: str) -> str:
        """The HF module (in-memory name) that holds checkpoint tensor ``hf_key``."""
        key = self.hf_in_memory.get(hf_key, hf_key)
        return key.rsplit(".", 1)[0] if "." in key else ""

    @property
    def ok(self) -> bool:
        """Every TAO tensor (bar a reported head skip) has exactly one well-shaped source; no HF tensor is lost."""
        return not (self.missing or self.unexpected or self.shape_errors)

    def table(self) -> list[Row]:
        return [e.row() for e in self.entries]

    def tao_keys(self) -> list[str]:
        return [e.tao_key for e in self.entries]

    def hf_keys_used(self) -> set[str]:
        return {k for e in self.entries for k in e.hf_keys}

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.entries:
            name = "+".join(op for op, _ in e.ops if op not in ("optional", "first_of"))  # markers, not transforms
            counts[name] = counts.get(name, 0) + 1
        return counts

    def problems(self, limit: int = 8) -> str:
        """One line listing what makes the mapping incomplete (empty when ``ok``)."""
        parts = []
        for label, items in (
            ("missing TAO keys", self.missing),
            (
                "unexpected HF keys",
                [f"{k} ({self.unexpected_hints.get(k, 'no rule')})" for k in self.unexpected],
            ),
            ("shape mismatches", self.shape_errors),
        ):
            if items:
                parts.append(f"{len(items)} {label}: {_truncate(items, limit)}")
        return "; ".join(parts)

    def summary(self) -> str:
        ops = ", ".join(f"{n} {op}" for op, n in sorted(self.op_counts().items()))
        text = f"{self.family}: {len(self.entries)} TAO tensors ({ops})"
        if self.fresh:
            text += f"; {len(self.fresh)} TAO tensors start fresh (no HF counterpart)"
        if self.filled:
            text += f"; {len(self.filled)} constant-filled"
        if self.ignored:
            text += f"; {len(self.ignored)} HF tensors ignored"
        if self.skipped_head:
            text += f"; head skipped: {self.skipped_head.reason}"
        if not self.ok:
            text += f"; INCOMPLETE: {self.problems()}"
        return text

    def reason_notes(self) -> list[str]:
        """Why HF tensors go unused and TAO tensors are constant-filled, one line per reason."""
        notes = [f"HF tensors not used ({key}): {reason}" for key, reason in _group_reasons(self.ignored)]
        notes += [f"TAO tensors with no HF source, constant-filled ({key}): {reason}"
                  for key, reason in _group_reasons(self.filled)]
        return notes

    def render(self, name: str = "MAPPING") -> str:
        """The mapping as Python source (a list literal of rows) for a generated converter to embed."""
        lines = [
            f"# HF -> TAO weight mapping ({self.family}), derived by tao-scaffold from the HF checkpoint's and",
            "# the TAO backbone's state-dict schemas. Row: (tao_key, hf_keys, ops); apply_mapping() runs the",
            "# ops in order: copy | concat(dim) | reshape(shape) | permute(dims) | squeeze/unsqueeze(dim) | fill;",
            "# optional marks rows a checkpoint may lack (task head of a base model, buffers TAO computes).",
        ]
        if self.skipped_head:
            lines.append(f"# Classifier head not converted: {self.skipped_head.reason}")
        for key, reason in _group_reasons(self.ignored):
            lines.append(f"# HF tensors not used ({key}): {reason}")
        if self.fresh:
            lines.append(f"# TAO tensors the HF checkpoint has no counterpart for, kept at TAO's initialisation: "
                         f"{_truncate(self.fresh, 4)}")
        for key, reason in _group_reasons(self.filled):
            lines.append(f"# TAO tensors with no HF source, constant-filled ({key}): {reason}")
        lines = [wrapped for line in lines for wrapped in _wrap_comment(line)]
        lines.append(f"{name} = [")
        for e in self.entries:
            lines.append(f"    {e.row()!r},")
        lines.append("]")
        return "\n".join(lines) + "\n"


def _wrap_comment(line: str, width: int = 100) -> list[str]:
    if len(line) <= width:
        return [line]
    return textwrap.wrap(line[2:], width=width - 4, initial_indent="# ", subsequent_indent="#   ")


def _group_reasons(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    grouped: dict[str, list[str]] = {}
    for key, reason in pairs:
        grouped.setdefault(reason, []).append(key)
    return [(_truncate(keys, 4), reason) for reason, keys in grouped.items()]


def _truncate(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")


def schema_of(state_dict_or_schema: Mapping[str, Any]) -> dict[str, Shape]:
    """key -> shape from a state dict (tensors) or an existing schema (shapes / lists)."""
    schema = {}
    for key, value in state_dict_or_schema.items():
        shape = getattr(value, "shape", value)
        schema[key] = tuple(int(d) for d in shape)
    return schema


def resolve_family(family: Family | str) -> Family:
    """A catalog Family from itself, its name or an HF model_type."""
    if isinstance(family, Family):
        return family
    found = family_named(family) or family_for(family)
    if found is None:
        raise KeyError(f"unknown family {family!r}")
    return found


def resolve_rules(family: Family | KeyRules | str, task: str = CLASSIFICATION.name) -> tuple[str, KeyRules]:
    """(family name, KeyRules of a ``task`` port) from a Family, a KeyRules, a family name or an HF model_type."""
    if isinstance(family, KeyRules):
        return "custom", family
    family = resolve_family(family)
    rules = family.key_rules(task)
    if rules is None:
        raise KeyError(
            f"family {family.name!r} has no key rules for {task} ports: weight conversion is not supported yet"
        )
    return family.name, rules


def derive_mapping(
    hf_schema: Mapping[str, Any],
    tao_schema: Mapping[str, Any],
    family: Family | KeyRules | str,
    task: str = CLASSIFICATION.name,
) -> WeightMapping:
    """Derive the explicit mapping for one (HF checkpoint, TAO backbone) pair.

    ``hf_schema`` / ``tao_schema``: key -> shape (or state dicts). ``family``: catalog Family, its name,
    an HF model_type, or a bare ``KeyRules``.
    """
    name, rules = resolve_rules(family, task)
    hf = schema_of(hf_schema)
    tao = schema_of(tao_schema)
    head_re = re.compile(rules.tao_head)
    result = WeightMapping(family=name, entries=[])
    matched = _rename(hf, rules, result)
    sources, concat_width, head_hf_keys = _group(matched, rules, tao, head_re, result)
    result.fresh = _fresh_group(tao, rules, sources)
    head_problems = _verify(hf, tao, rules, head_re, sources, concat_width, result)
    _settle_head(hf, tao, head_re, head_hf_keys, head_problems, result)
    if rules.hf_tied_aliases:
        _add_tied_aliases(hf_schema, result)
    return result


def tied_groups(hf_state_dict: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """HF key -> the other keys holding the same tensor (tied weights), from a state dict with tensors
    (``state_dict(keep_vars=True)``: tied Parameters keep one identity); empty for a shape-only schema."""
    by_identity: dict[int, list[str]] = {}
    for key, value in hf_state_dict.items():
        if hasattr(value, "data_ptr"):  # a tensor, not a shape
            by_identity.setdefault(id(value), []).append(key)
    return {key: tuple(k for k in keys if k != key) for keys in by_identity.values() if len(keys) > 1 for key in keys}


def _add_tied_aliases(hf_schema: Mapping[str, Any], result: WeightMapping) -> None:
    """Copy rows from a tied HF tensor take the first of its names a checkpoint has (``first_of``): which name
    save_pretrained keeps depends on the config and the transformers version."""
    groups = tied_groups(hf_schema)
    for index, entry in enumerate(result.entries):
        flags = tuple(op for op in entry.ops if op[0] == "optional")
        steps = entry.ops[len(flags):]
        if len(entry.hf_keys) == 1 and steps and steps[0][0] == "copy" and groups.get(entry.hf_keys[0]):
            result.entries[index] = MappingEntry(entry.tao_key, entry.hf_keys + groups[entry.hf_keys[0]],
                                                 flags + (("first_of", None),) + steps, entry.shape)


def _rename(
    hf: dict[str, Shape], rules: KeyRules, result: WeightMapping
) -> list[tuple[str, int, re.Match[str]]]:
    """Step 1: the first rule whose pattern matches the (prefix-stripped) HF key wins; declared ignores aside."""
    compiled = [re.compile(r.pattern) for r in rules.rules]
    ignore = [(re.compile(p), why) for p, why in rules.ignore]
    matched = []
    for key in hf:
        local = _strip_prefix(key, rules.hf_prefixes)
        why = next((w for p, w in ignore if p.fullmatch(local)), None)
        if why is not None:
            result.ignored.append((key, why))
            continue
        for index, pattern in enumerate(compiled):
            m = pattern.fullmatch(local)
            if m:
                matched.append((key, index, m))
                break
        else:
            result.unexpected.append(key)
            result.unexpected_hints[key] = "no rule matches"
    return matched


def _group(matched, rules: KeyRules, tao: dict[str, Shape], head_re, result: WeightMapping):
    """Step 2: render targets and group the HF sources of each TAO key ((part, hf_key) for concat)."""
    flat_ranks = _flat_ranks(matched, rules)
    sources: dict[str, list[tuple[int, str]]] = {}
    concat_width: dict[str, int] = {}
    head_hf_keys: list[str] = []
    for key, index, m in matched:
        rule = rules.rules[index]
        targets = rule.target if isinstance(rule.target, tuple) else (rule.target,)
        rendered = [_render(t, m, flat_ranks) for t in targets]
        present = [t for t in rendered if t in tao]  # a fan-out feeds every listed key the TAO model has
        if any(head_re.fullmatch(t) for t in rendered):
            head_hf_keys.append(key)
        if not present:
            result.unexpected.append(key)
            result.unexpected_hints[key] = f"maps to {' / '.join(rendered)}, not in the TAO model"
            continue
        part = rule.concat.index(m.group("part")) if rule.concat else 0
        for t in present:
            sources.setdefault(t, []).append((part, key))
            if rule.concat:
                concat_width[t] = len(rule.concat)
    return sources, concat_width, head_hf_keys


def _fresh_group(tao: dict[str, Shape], rules: KeyRules, sources) -> list[str]:
    """The ``tao_fresh`` keys, when no HF tensor maps into that group (else []: the group must map completely)."""
    fresh_re = re.compile(rules.tao_fresh)
    if any(fresh_re.fullmatch(key) for key in sources):
        return []
    return [key for key in tao if fresh_re.fullmatch(key)]


def _verify(hf, tao, rules: KeyRules, head_re, sources, concat_width, result: WeightMapping) -> list[str]:
    """Step 3: one entry per TAO key, in the TAO state dict's order, with shapes checked; head problems returned."""
    fills = [(re.compile(p), value, why) for p, value, why in rules.fill]
    head_problems: list[str] = []
    fresh = set(result.fresh)
    for tao_key, tao_shape in tao.items():
        if tao_key in fresh:
            continue
        is_head = bool(head_re.fullmatch(tao_key))
        srcs = sources.get(tao_key)
        if not srcs:
            fill = next(((v, w) for p, v, w in fills if p.fullmatch(tao_key)), None)
            if fill is not None:
                result.entries.append(MappingEntry(tao_key, (), (("fill", (fill[0], tao_shape)),), tao_shape))
                result.filled.append((tao_key, fill[1]))
            elif is_head:
                head_problems.append(f"TAO {tao_key} {tao_shape} has no HF source")
            elif any(re.fullmatch(p, tao_key) for p in rules.tao_computed):
                result.computed.append(tao_key)  # TAO's constructor computes it; nothing to convert
            else:
                result.missing.append(tao_key)
            continue
        entry, error = _build_entry(tao_key, tao_shape, srcs, concat_width.get(tao_key), hf, rules.concat_dim)
        if error:
            (head_problems if is_head else result.shape_errors).append(error)
            continue
        if is_head or any(re.fullmatch(p, tao_key) for p in rules.tao_computed):
            # a checkpoint without the task head (a base model) or without TAO-computed buffers still converts
            entry = MappingEntry(entry.tao_key, entry.hf_keys, (("optional", None),) + entry.ops, entry.shape)
        result.entries.append(entry)
    return head_problems


def _settle_head(hf, tao, head_re, head_hf_keys, head_problems, result: WeightMapping) -> None:
    """Step 4: the head carries over only when every head tensor lines up; else it is skipped whole, with why."""
    tao_head_keys = tuple(k for k in tao if head_re.fullmatch(k))
    stray_head = [k for k in head_hf_keys if k in result.unexpected]
    if not (head_problems or stray_head):
        return
    result.entries = [e for e in result.entries if not head_re.fullmatch(e.tao_key)]
    for k in stray_head:
        result.unexpected.remove(k)
        result.unexpected_hints.pop(k, None)
    result.skipped_head = HeadSkip(
        reason=_head_reason(hf, tao, head_hf_keys, tao_head_keys, head_problems),
        tao_keys=tao_head_keys,
        hf_keys=tuple(head_hf_keys),
    )


def _strip_prefix(key: str, prefixes: Iterable[str]) -> str:
    for prefix in prefixes:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _flat_ranks(matched, rules: KeyRules) -> dict[tuple[str, ...], dict[tuple[int, ...], int]]:
    """For every ``{flat:a,b}`` field: rank of each numeric (a, b) tuple among all matched HF keys."""
    seen: dict[tuple[str, ...], set[tuple[int, ...]]] = {}
    for _, index, m in matched:
        rule = rules.rules[index]
        for target in rule.target if isinstance(rule.target, tuple) else (rule.target,):
            for spec in _FIELD.findall(target):
                if spec.startswith("flat:"):
                    groups = tuple(g.strip() for g in spec[5:].split(","))
                    seen.setdefault(groups, set()).add(tuple(int(m.group(g)) for g in groups))
    return {groups: {tup: rank for rank, tup in enumerate(sorted(tuples))} for groups, tuples in seen.items()}


def _render(template: str, m: re.Match[str], flat_ranks) -> str:
    def field_value(fm: re.Match[str]) -> str:
        spec = fm.group(1).strip()
        if spec.startswith("flat:"):
            groups = tuple(g.strip() for g in spec[5:].split(","))
            return str(flat_ranks[groups][tuple(int(m.group(g)) for g in groups)])
        arith = re.fullmatch(r"(\w+)\s*([+-])\s*(\d+)", spec)
        if arith:
            value = int(m.group(arith.group(1)))
            delta = int(arith.group(3))
            return str(value + delta if arith.group(2) == "+" else value - delta)
        return m.group(spec)

    return _FIELD.sub(field_value, template)


def _build_entry(tao_key, tao_shape, srcs, width, hf, concat_dim) -> tuple[MappingEntry | None, str]:
    srcs = sorted(srcs)
    parts = [p for p, _ in srcs]
    hf_keys = tuple(k for _, k in srcs)
    shapes = [hf[k] for k in hf_keys]
    described = ", ".join(f"{k} {hf[k]}" for k in hf_keys)
    if width is None:
        if len(srcs) > 1:
            return (
                None,
                f"{tao_key}: {len(srcs)} HF tensors map to it ({described}) but no concat is declared",
            )
        ops: list[tuple[str, Any]] = [("copy", None)]
        shape = shapes[0]
    else:
        if parts != list(range(width)):
            return None, f"{tao_key}: concat needs {width} parts, got {described}"
        rest = {s[:concat_dim] + s[concat_dim + 1 :] for s in shapes}
        if len(rest) != 1 or any(len(s) <= concat_dim for s in shapes):
            return None, f"{tao_key}: cannot concat {described} along dim {concat_dim}"
        base = shapes[0]
        shape = base[:concat_dim] + (sum(s[concat_dim] for s in shapes),) + base[concat_dim + 1 :]
        ops = [("concat", concat_dim)]
    if shape != tao_shape:
        if math.prod(shape) == math.prod(tao_shape) and _squeezed(shape) == _squeezed(tao_shape):
            ops.append(("reshape", tao_shape))
        else:
            return None, f"{tao_key} {tao_shape} <- {'+'.join(o for o, _ in ops)}({described}) = {shape}"
    return MappingEntry(tao_key, hf_keys, tuple(ops), tao_shape), ""


def _squeezed(shape: Shape) -> Shape:
    return tuple(d for d in shape if d != 1)


def _head_reason(hf, tao, hf_keys, tao_keys, problems) -> str:
    if not hf_keys:
        return "the HF checkpoint has no classifier (base-model weights); TAO head keeps its initialisation"
    if not tao_keys:
        return f"the TAO model has no classifier head; HF {', '.join(hf_keys)} dropped"
    # Linear (out, in) or 1x1 conv (out, in, 1, 1) classifier weights
    hf_w = next((k for k in hf_keys if k.endswith("weight") and len(hf[k]) in (2, 4)), None)
    tao_w = next((k for k in tao_keys if k.endswith("weight") and len(tao[k]) in (2, 4)), None)
    if hf_w and tao_w:
        (hf_out, hf_in), (tao_out, tao_in) = hf[hf_w][:2], tao[tao_w][:2]
        why = []
        if hf_out != tao_out:
            why.append(f"class count differs (HF {hf_out}, TAO {tao_out})")
        if hf_in != tao_in:
            why.append(
                f"head input width differs (HF {hf_in}, TAO {tao_in}: the heads consume different features)"
            )
        if why:
            return f"{' and '.join(why)}: {hf_w} {hf[hf_w]} vs {tao_w} {tao[tao_w]}; TAO head keeps its initialisation"
    return "; ".join(problems) + "; TAO head keeps its initialisation"
