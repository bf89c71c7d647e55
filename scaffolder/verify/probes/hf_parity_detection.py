"""HF detector vs the port's TAO RT-DETR / Deformable DETR, through the port's own generated weight converter.

    python hf_parity_detection.py --name NAME --config-class mod:ExperimentConfig --hf-config config.json
        --auto-class AutoModelForObjectDetection [--hf-features detections|detections_fp64|feature_pyramid[:...]]
        [--seed 0] [--tolerance 1e-4] --out result.json

The HF model is built from its config with a *well-conditioned* random init (unit-variance conv/linear weights,
BatchNorm/LayerNorm near identity with random statistics): HF's default init makes the encoder collapse, so
hundreds of encoder scores tie and the top-k query choice -- not the weights -- decides the outputs. It is saved
with save_pretrained, converted by the port's ``utils/hf_checkpoint_converter.py`` and loaded the way TAO loads it:

* ``detections`` / ``detections_fp64`` (whole detector): the checkpoint (``tao_model`` + ``model.`` keys) goes
  through TAO's ``load_pretrained_weights`` as ``train.pretrained_model_path`` does, into the port's
  ``build_model`` at an input < 400 px (TAO precomputes anchors for eval_spatial_size, so both use that size; at
  640 px RT-DETR's border anchors tie). Compared: ``pred_logits`` / ``pred_boxes`` -- per query index, and with the
  queries matched one to one (the order of near-tied encoder scores may differ in the last float bit); and the
  same in fp64. ``detections_fp64`` gates on fp64 (deformable box refinement amplifies fp32 rounding).
* Deformable DETR ports (``model.with_box_refine`` in the config): the checkpoint (a plain ``state_dict``) goes
  through TAO deformable_detr's ``load_pretrained_weights``, into the port's ``build_model`` as TAO trains and
  evaluates it (input: image + a zero padding-mask channel) at the evaluate size (``FixedResize``, < 400 px);
  TAO's own D-DETR train pairs tensors by sorted key, so the key sets must be equal (``tao_keys_sorted_match``).
* ``feature_pyramid`` (backbone only): the backbone file goes to ``model.pretrained_backbone_path`` (TAO's own
  loader); the 3 pyramid levels (strides 8/16/32) are compared with HF's hidden states of stages 2-4.
  ``feature_pyramid:hf=...;tao=...`` compares the inputs/outputs of the listed modules instead, where the
  backbone's levels include layers HF has no counterpart of (ConvNeXt v1's projections, Swin's per-level norms).
* ``vit_map`` (backbone only, a plain ViT under the generated simple feature pyramid, whose levels start fresh):
  HF's ``last_hidden_state`` patch tokens (NCHW) vs the pyramid's stride-16 input (``_common.vit_map_pair``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile

from _common import VIT_MAP_COMPARED, load_object, run, vit_map_pair, well_conditioned  # pylint: disable=import-error

PARITY_MAX_SIZE = 384  # < 400 px: no masked border anchor on RT-DETR's stride-8 level


def matched_diff(hf_logits, hf_boxes, tao_logits, tao_boxes):
    """(max |d logits|, max |d boxes|, reordered queries) with TAO's queries matched one to one to HF's."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    worst_l = worst_b = 0.0
    swaps = 0
    for b in range(hf_logits.shape[0]):
        cost = (np.abs(hf_boxes[b][:, None] - tao_boxes[b][None]).sum(-1)
                + np.abs(hf_logits[b][:, None] - tao_logits[b][None]).mean(-1))
        rows, cols = linear_sum_assignment(cost)
        swaps += int((rows != cols).sum())
        worst_l = max(worst_l, float(np.abs(hf_logits[b][rows] - tao_logits[b][cols]).max()))
        worst_b = max(worst_b, float(np.abs(hf_boxes[b][rows] - tao_boxes[b][cols]).max()))
    return worst_l, worst_b, swaps


def _module_side(root, names, run):
    """Run ``run()`` with hooks capturing each listed module's input (``name<``) or output (``name>``)."""
    captured, handles = {}, []

    def keep(key, value):  # a hook returning a value would replace the module's input/output: return None
        captured.setdefault(key, value[0] if isinstance(value, tuple) else value)

    for spec in names:
        name, where = spec[:-1], spec[-1]
        module = root.get_submodule(name)
        if where == "<":
            handles.append(module.register_forward_pre_hook(lambda _m, args, key=spec: keep(key, args)))
        elif where == ">":
            handles.append(module.register_forward_hook(lambda _m, _args, out, key=spec: keep(key, out)))
        else:
            raise SystemExit(f"--hf-features: {spec!r} must end with '<' (input) or '>' (output)")
    try:
        default = run()
    finally:
        for handle in handles:
            handle.remove()
    return [captured[spec] for spec in names] if names else default


def pyramid_levels(hf, backbone, x, mode):
    """(HF levels, TAO levels, what was compared) for ``feature_pyramid[:hf=A<,B<,C>;tao=X<,Y<,Z>]``: by default
    HF's ``hidden_states[2:5]`` (stages 2-4) and the backbone's ``forward_feature_pyramid`` levels; a listed side
    takes the inputs / outputs of those modules instead (HF: under the base model; TAO: under the backbone)."""
    import torch

    sides = dict(part.split("=", 1) for part in mode.partition(":")[2].split(";") if part)
    hf_names = [n for n in sides.get("hf", "").split(",") if n]
    tao_names = [n for n in sides.get("tao", "").split(",") if n]
    with torch.no_grad():
        hf_levels = _module_side(hf.base_model, hf_names,
                                 lambda: hf(pixel_values=x, output_hidden_states=True).hidden_states[2:5])
        tao_levels = _module_side(backbone, tao_names, lambda: backbone.forward_feature_pyramid(x))
        if tao_names:  # the backbone's own pyramid must still run and have its declared widths
            levels = backbone.forward_feature_pyramid(x)
            widths = [int(level.shape[1]) for level in levels]
            if len(levels) != 3 or widths != [int(c) for c in backbone.out_channels]:
                raise SystemExit(f"the backbone's pyramid has widths {widths}, out_channels {backbone.out_channels}")
    compared = (f"HF {', '.join(hf_names) or 'hidden_states[2:5]'} vs TAO backbone "
                f"{', '.join(tao_names) or 'forward_feature_pyramid'}")
    return list(hf_levels), list(tao_levels), compared


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--config-class", required=True)
    parser.add_argument("--hf-config", required=True)
    parser.add_argument("--hf-features", default="detections")
    parser.add_argument("--auto-class", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--out", required=True)
    return parser.parse_args()


def build_models(name, config_class, hf_config_path, auto_class, *, backbone_only=False, seed=0,
                 max_size=PARITY_MAX_SIZE, result=None, messages=None):
    """(HF detector with seeded well-conditioned random weights, the port's TAO model with those weights converted,
    the port's config, (height, width), ddetr), both in eval mode -- also used by scripts/bench_port_throughput.py.

    The input size (RT-DETR: ``eval_spatial_size``, for which TAO precomputes its anchors; Deformable DETR: the
    evaluate size) is capped at ``max_size`` (None: the spec's), rounded down to a multiple of 32; inputs must have
    that size, and a Deformable DETR port (``ddetr``) takes the image plus a zero padding-mask channel.
    ``result`` / ``messages`` (a dict / a list) receive the loader's numbers and problems."""
    import torch
    import transformers
    from omegaconf import OmegaConf

    result = {} if result is None else result
    messages = [] if messages is None else messages
    converter = importlib.import_module(f"nvidia_tao_pytorch.cv.{name}.utils.hf_checkpoint_converter")
    build = importlib.import_module(f"nvidia_tao_pytorch.cv.{name}.model.build")
    hf_config = transformers.AutoConfig.from_pretrained(os.path.dirname(os.path.abspath(hf_config_path)))
    torch.manual_seed(seed)
    hf = getattr(transformers, auto_class).from_config(hf_config).eval()
    well_conditioned(hf, seed)
    cfg = OmegaConf.structured(load_object(config_class)())
    ddetr = "with_box_refine" in cfg.model  # TAO deformable_detr's model section
    size = [cfg.evaluate.input_height, cfg.evaluate.input_width] if ddetr else cfg.dataset.augmentation.eval_spatial_size
    height, width = (min(int(v), max_size or int(v)) // 32 * 32 for v in size)
    if ddetr:
        cfg.train.activation_checkpoint = False
    else:
        cfg.dataset.augmentation.eval_spatial_size = [height, width]
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        state_dict = converter.convert(tmp)
        result["mapped_tensors"] = len(converter.MAPPING)
        if backbone_only:
            path = os.path.join(tmp, "backbone.pth")
            torch.save(converter.tao_checkpoint(state_dict, converter.TAO_MODEL), path)
            cfg.model.pretrained_backbone_path = path
            tao = build.build_model(cfg).eval()
            own = tao.model.backbone.state_dict()  # TAO's loader takes the checkpoint's keys of these shapes
            loaded = [k for k, v in state_dict.items() if k in own and tuple(own[k].shape) == tuple(v.shape)]
            result["tao_keys_loaded"] = f"{len(loaded)}/{len(own)}"
            # RT-DETR freezes a pretrained resnet's norms (FrozenBatchNorm2d: no num_batches_tracked counter)
            unused = sorted(k for k in set(state_dict) - set(loaded) if not k.endswith("num_batches_tracked"))
            if unused:
                messages.append(f"{len(unused)} converted tensors fit no backbone tensor (e.g. {unused[:3]})")
        elif ddetr:
            from nvidia_tao_pytorch.cv.deformable_detr.utils.misc import load_pretrained_weights as load_ddetr

            path = os.path.join(tmp, "model.pth")
            torch.save(converter.tao_checkpoint(state_dict, converter.TAO_MODEL), path)
            loaded = load_ddetr(path)
            tao = build.build_model(cfg).eval()
            result["tao_keys_sorted_match"] = sorted(loaded) == sorted(tao.state_dict())
            if not result["tao_keys_sorted_match"]:
                messages.append("the converted checkpoint's keys differ from the training model's: TAO's "
                                "deformable_detr train pairs them by sorted position")
            missing, unexpected = tao.load_state_dict(loaded, strict=False)
            result["tao_keys_loaded"] = f"{len(loaded) - len(unexpected)}/{len(tao.state_dict())}"
            if missing or unexpected:
                messages.append(f"TAO's loader gives {len(missing)} missing / {len(unexpected)} unexpected keys "
                                f"(e.g. {(list(missing) + list(unexpected))[:3]})")
        else:
            from nvidia_tao_pytorch.core.utils.ptm_utils import load_pretrained_weights
            from nvidia_tao_pytorch.cv.rtdetr.model.utils import ptm_adapter, rtdetr_parser

            path = os.path.join(tmp, "model.pth")
            torch.save(converter.tao_checkpoint(state_dict, converter.TAO_MODEL), path)
            loaded = load_pretrained_weights(path, parser=rtdetr_parser, ptm_adapter=ptm_adapter)
            tao = build.build_model(cfg).eval()
            missing, unexpected = tao.load_state_dict(loaded, strict=False)
            result["tao_keys_loaded"] = f"{len(loaded) - len(unexpected)}/{len(tao.state_dict())}"
            if missing or unexpected:
                messages.append(f"TAO's loader gives {len(missing)} missing / {len(unexpected)} unexpected keys "
                                f"(e.g. {(list(missing) + list(unexpected))[:3]})")
    return hf, tao, cfg, (height, width), ddetr


def main():
    args = parse_args()
    import torch

    mode = args.hf_features
    backbone_only = mode.partition(":")[0] in ("feature_pyramid", "vit_map")
    result, messages = {"tolerance": args.tolerance, "scope": "backbone" if backbone_only else "model"}, []
    hf, tao, _cfg, (height, width), ddetr = build_models(
        args.name, args.config_class, args.hf_config, args.auto_class, backbone_only=backbone_only,
        seed=args.seed, max_size=PARITY_MAX_SIZE, result=result, messages=messages)
    result["parity_input"] = [2, 3, height, width]

    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(args.seed + 1))
    if backbone_only:
        if mode == "vit_map":  # a plain ViT under the generated feature pyramid: the levels are fresh, so compared
            hf_levels, tao_levels = ([m] for m in vit_map_pair(hf, tao.model.backbone, x))
            result["compared"] = VIT_MAP_COMPARED
        else:
            hf_levels, tao_levels, compared = pyramid_levels(hf, tao.model.backbone, x, mode)
            result["compared"] = compared
        shapes_ok = [tuple(a.shape) == tuple(b.shape) for a, b in zip(hf_levels, tao_levels)]
        levels = 1 if mode == "vit_map" else 3  # the stride-16 map / the pyramid's strides 8, 16, 32
        if len(hf_levels) != levels or len(tao_levels) != levels or not all(shapes_ok):
            messages.append(f"pyramid shapes differ: HF {[tuple(a.shape) for a in hf_levels]} vs TAO "
                            f"{[tuple(b.shape) for b in tao_levels]}")
        else:
            result["max_abs_features"] = max((a - b).abs().max().item() for a, b in zip(hf_levels, tao_levels))
            if result["max_abs_features"] > args.tolerance:
                messages.append(f"backbone pyramid differs by {result['max_abs_features']:.3g} (> {args.tolerance:g})")
        result["ok"], result["messages"] = not messages, messages
        return result

    outputs = {}
    for dtype in (torch.float32, torch.float64):
        hf.to(dtype)
        tao.to(dtype)
        tao_input = torch.cat([x, torch.zeros_like(x[:, :1])], dim=1) if ddetr else x  # + padding mask (none)
        with torch.no_grad():
            ref = hf(pixel_values=x.to(dtype))
            got = tao(tao_input.to(dtype))
        outputs[dtype] = [t.detach().double().numpy() for t in (ref.logits, ref.pred_boxes, got["pred_logits"],
                                                                got["pred_boxes"])]
    import numpy as np

    hl, hb, tl, tb = outputs[torch.float32]
    result["index_max_abs_logits"] = float(np.abs(hl - tl).max())
    result["index_max_abs_boxes"] = float(np.abs(hb - tb).max())
    result["max_abs_logits"], result["max_abs_boxes"], result["query_order_swaps"] = matched_diff(hl, hb, tl, tb)
    hl, hb, tl, tb = outputs[torch.float64]
    result["fp64_max_abs_logits"] = float(np.abs(hl - tl).max())
    result["fp64_max_abs_boxes"] = float(np.abs(hb - tb).max())
    result["fp64_gate"] = mode == "detections_fp64"
    keys = ("fp64_max_abs_logits", "fp64_max_abs_boxes") if result["fp64_gate"] else ("max_abs_logits", "max_abs_boxes")
    for key in keys:
        if result[key] > args.tolerance:
            messages.append(f"{key} {result[key]:.3g} > {args.tolerance:g}: the converted weights do not reproduce HF")
    result["ok"], result["messages"] = not messages, messages
    return result


if __name__ == "__main__":
    run(main)
