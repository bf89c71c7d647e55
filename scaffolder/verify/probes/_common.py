"""Helpers shared by verify's probes.

The probes run in the *target* environment (the given Python, or a TAO container), where tao-scaffold
itself is not installed: they are copied into the work dir and run as ``python <probe>.py``, so they
import only the standard library, numpy, TAO and TAO's dependencies. Each writes one JSON object to
``--out`` (``ok``, ``messages`` and metrics) and exits 0 when it could decide, 1 when it crashed.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import traceback


def load_object(ref):
    """``package.module:Attribute`` -> the attribute."""
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def compose(config_class, spec_path, overrides=()):
    """The spec as TAO's hydra_runner builds it: schema <- YAML <- ``key=value`` overrides."""
    from omegaconf import OmegaConf

    schema = OmegaConf.structured(load_object(config_class)())
    cfg = OmegaConf.merge(schema, OmegaConf.load(spec_path))
    for key, value in _parse_overrides(overrides or ()):
        # one key at a time, as hydra applies overrides: keys may index lists (sources.0.image_dir)
        OmegaConf.update(cfg, key, value, merge=True)
    return cfg


def _parse_overrides(overrides):
    """``key=value`` strings -> [(key, value)], values parsed with hydra's own override grammar (lists of dicts
    such as ``palette=[{label_id:0,rgb:[0,0,0]}]`` included), or OmegaConf's dotlist where hydra is absent."""
    from omegaconf import OmegaConf

    plain = [o.lstrip("+") for o in overrides]
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
    except ImportError:
        pairs = [o.partition("=") for o in plain]
        return [(k, OmegaConf.from_dotlist([f"value={v}"]).value) for k, _, v in pairs]
    return [(o.key_or_group, o.value()) for o in OverridesParser.create().parse_overrides(plain)]


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_result(path, result):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_clean(result), handle, indent=2)
        handle.write("\n")


def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def randomize(model, seed):
    """Seeded random weights that make every tensor matter (norm scales != 1, BN stats != identity).

    The one randomiser of HF/TAO parity checks: verify's hf_parity probe and ``scaffolder.convert.parity``
    (inspect-time) use it, so both test the same kind of weights.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
            elif tensor.ndim <= 1 and name.endswith("weight"):
                tensor.copy_(torch.rand(tensor.shape, generator=gen) * 0.4 + 0.8)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.02)


def well_conditioned(model, seed):
    """Unit-variance conv/linear weights, near-identity norms with random BatchNorm statistics (detectors).

    ``randomize``'s small weights make a DETR encoder collapse: its scores tie and the top-k query choice, not the
    weights, decides the outputs. This init keeps activations at unit scale so every tensor matters.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                weight.copy_(torch.randn(weight.shape, generator=gen) / math.sqrt(weight[0].numel()))
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.02)
            elif "BatchNorm" in type(module).__name__ or isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
                if weight is not None:
                    weight.copy_(1 + 0.1 * torch.randn(weight.shape, generator=gen))
                    module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
                if getattr(module, "running_mean", None) is not None:
                    module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
                    module.running_var.copy_(1 + 0.2 * torch.rand(module.running_var.shape, generator=gen))
            elif isinstance(module, nn.Embedding):
                weight.copy_(torch.randn(weight.shape, generator=gen))


def compare(reference, candidate, top1=False):
    """max_abs_diff, mean_abs_diff, cosine (flattened) and, with ``top1``, argmax agreement over the last axis."""
    import numpy as np

    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    out = {"shape": list(a.shape), "candidate_shape": list(b.shape)}
    if a.shape != b.shape:
        out["shape_mismatch"] = True
        return out
    diff = np.abs(a - b)
    out["max_abs_diff"] = float(diff.max()) if diff.size else 0.0
    out["mean_abs_diff"] = float(diff.mean()) if diff.size else 0.0
    fa, fb = a.reshape(len(a), -1) if a.ndim > 1 else a[None], b.reshape(len(b), -1) if b.ndim > 1 else b[None]
    norms = np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1)
    cos = np.where(norms > 0, (fa * fb).sum(axis=1) / np.where(norms > 0, norms, 1), 1.0)
    out["cosine_min"] = float(cos.min())
    if top1 and a.ndim >= 2:
        out["top1_agreement"] = float((a.argmax(axis=-1) == b.argmax(axis=-1)).mean())
    return out


def run(main):
    """Run ``main(args) -> dict`` and write its result; a crash becomes ``ok: false`` with the traceback."""
    import argparse  # noqa: F401  (probes build their own parser)

    out = None
    if "--out" in sys.argv:
        out = sys.argv[sys.argv.index("--out") + 1]
    try:
        result = main()
    except BaseException as exc:  # noqa: BLE001 - report anything, including SystemExit from TAO code
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" ({last.filename}:{last.lineno})" if last else ""
        result = {"ok": False, "crashed": True, "error": f"{type(exc).__name__}: {exc}{where}"}
        if out:
            write_result(out, result)
        print(f"TAO-SCAFFOLD-PROBE {json.dumps(_clean(result))}")
        sys.exit(1)
    if out:
        write_result(out, result)
    print(f"TAO-SCAFFOLD-PROBE {json.dumps(_clean(result))}")
    sys.exit(0)


# what a vit_map parity compares (both probes report it as ``compared``)
VIT_MAP_COMPARED = "vit_map: HF last_hidden_state patch tokens (NCHW) vs the pyramid's stride-16 input"


def vit_map_pair(hf, wrapper, x):
    """(HF map, TAO map) for a port whose backbone is the generated ViT feature pyramid (``hf_features: vit_map``).

    HF: the base model's ``last_hidden_state`` (after its final layernorm) on the image the wrapper's ViT sees
    (``wrapper.vit_input(x)``: resized to the stride-16 grid for a patch size other than 16), prefix tokens (CLS,
    registers) dropped, reshaped to (B, C, H / 16, W / 16). TAO: ``wrapper.forward_vit_map(x)``, the stride-16 map
    every pyramid level is built from (the ViT's layer-normed patch tokens).
    """
    import inspect

    import torch

    base = hf.base_model
    pixels = wrapper.vit_input(x)
    extra = {"interpolate_pos_encoding": True} if "interpolate_pos_encoding" in inspect.signature(
        base.forward).parameters else {}  # ViT refuses other sizes without it; DINOv2 always resamples
    with torch.no_grad():
        tokens = base(pixel_values=pixels, **extra).last_hidden_state
        tao_map = wrapper.forward_vit_map(x)
    batch, dim, height, width = tao_map.shape
    tokens = tokens[:, tokens.shape[1] - height * width:]
    return tokens.transpose(1, 2).reshape(batch, dim, height, width), tao_map
