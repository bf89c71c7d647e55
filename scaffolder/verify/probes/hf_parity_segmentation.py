"""HF model vs the port's TAO SegFormer, through the port's generated converter and TAO's own checkpoint loader.

    python hf_parity_segmentation.py --name NAME --config-class mod:ExperimentConfig --hf-config config.json
        --hf-features hidden_states:0,1,2,3 [--size 256] [--seed 0] [--tolerance 1e-4] --out result.json

The HF model (the checkpoint's own class: SegformerForSemanticSegmentation, or e.g. ConvNextForImageClassification
for a backbone ported under the SegFormer decoder) is built from its config with seeded, well-conditioned random
weights (unit-variance convs/linears, norms near identity, random BatchNorm statistics: with HF's own init the
features shrink towards zero and every difference looks small) and saved with save_pretrained. The port's
``utils/hf_checkpoint_converter.py`` converts that folder; ``model/build.py`` builds the TAO model from the
schema defaults and TAO segformer's ``initialize_pretrained_weights`` loads the checkpoint (what
``train.pretrained_model_path`` does). Compared on one random batch: the 4 backbone feature maps
(``max_abs_features``: HF hidden states named by ``--hf-features`` vs what TAO's decoder receives) and, when the
decoder was converted, the decoder logits at 1/4 resolution (``max_abs_logits``). ``--hf-features`` forms:
see :func:`hf_pyramid` (e.g. Swin's ``stage_outputs:unit,unit,unit,layernorm``: HF's stage outputs before patch
merging through the norms TAO's pyramid applies -- three of them have no HF counterpart and start as unit norms).
``vit_map`` (a plain ViT under the generated simple feature pyramid, whose levels start fresh): HF's
``last_hidden_state`` patch tokens (NCHW) vs the pyramid's stride-16 input instead (``_common.vit_map_pair``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile

from _common import VIT_MAP_COMPARED, load_object, run, vit_map_pair  # pylint: disable=import-error


def well_conditioned(model, seed):
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) / fan_in**0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.02)
            elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=gen))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=gen))
                if isinstance(module, nn.BatchNorm2d):
                    module.running_mean.copy_(0.1 * torch.randn(module.running_mean.shape, generator=gen))
                    module.running_var.copy_(torch.rand(module.running_var.shape, generator=gen) + 0.5)
        for name, param in model.named_parameters():  # layer scales (1e-6 at init) would hide their blocks
            if "layer_scale" in name or name.endswith(".lambda1"):
                param.copy_(0.5 + 0.1 * torch.randn(param.shape, generator=gen))


def hf_class(architectures):
    import transformers

    own = next((a for a in architectures if hasattr(transformers, a)), None)
    if own is None or own.endswith("ForSemanticSegmentation"):
        return transformers.AutoModelForSemanticSegmentation
    return getattr(transformers, own)


def hf_pyramid(output, spec, stages=None):
    """The HF feature maps (NCHW) that ``--hf-features`` names (the catalog's TaskRules.hf_features).

    ``FIELD:i,j,k,l[:nhwc]``: the model output's ``FIELD`` at those indices (``nhwc``: channels-last, permuted);
    ``stage_outputs:...``: what :func:`capture_stage_outputs` recorded (``stages``)."""
    import torch

    field, _, rest = spec.partition(":")
    if field == "stage_outputs":
        return stages["maps"]
    indices, _, layout = rest.partition(":")
    maps = [getattr(output, field)[int(i)] for i in indices.split(",")]
    if layout == "nhwc":
        maps = [m.permute(0, 3, 1, 2) for m in maps]
    elif layout:
        raise ValueError(f"unknown layout {layout!r} in --hf-features {spec!r}")
    return [torch.as_tensor(m).contiguous() for m in maps]


def capture_stage_outputs(hf, spec):
    """``stage_outputs:N0,N1,...``: hooks on the base model's ``encoder.layers`` (HF Swin stages, called as
    ``stage(tokens, (h, w), ...)``) keep each stage's output *before* its patch merging -- the input of
    ``stage.downsample``, or the last stage's output -- which is what TAO's feature pyramid takes, as NCHW maps
    through norm ``Ni``: ``unit`` is a LayerNorm of unit weight and zero bias (a TAO pyramid norm that HF lacks
    starts so), any other name that module of the base model (e.g. ``layernorm``, HF's final norm). Hooks see only
    call arguments and the stage's first output, which every transformers release keeps. Returns (store,
    handles); ``store["maps"]`` is filled by the forward."""
    import torch.nn.functional as F

    if not spec.startswith("stage_outputs:"):
        return {}, []
    base = hf.base_model
    norms = spec.split(":", 1)[1].split(",")
    eps = float(getattr(hf.config, "layer_norm_eps", 1e-5))
    store, handles, dims = {"maps": [None] * len(norms)}, [], {}

    def keep(index, tokens):
        norm = norms[index]
        tokens = F.layer_norm(tokens, tokens.shape[-1:], eps=eps) if norm == "unit" else getattr(base, norm)(tokens)
        height, width = dims[index]
        store["maps"][index] = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width).contiguous()

    for index, stage in enumerate(base.encoder.layers[: len(norms)]):
        handles.append(stage.register_forward_pre_hook(lambda _m, args, i=index: dims.__setitem__(i, args[1])))
        if stage.downsample is not None:
            handles.append(stage.downsample.register_forward_pre_hook(lambda _m, args, i=index: keep(i, args[0])))
        else:
            handles.append(stage.register_forward_hook(lambda _m, _args, out, i=index: keep(i, out[0])))
    return store, handles


class _Holder:  # TAO's initialize_pretrained_weights loads into `pl_model.model`
    def __init__(self, model):
        self.model = model


def build_models(name, config_class, hf_config_path, seed=0):
    """(HF model with seeded well-conditioned random weights, the port's TAO SegFormer with those weights converted,
    the port's config, TAO's load report, the port's converter module), both in eval mode -- also used by
    scripts/bench_port_throughput.py. ``model/build.py`` builds the TAO model from the schema defaults and TAO
    segformer's ``initialize_pretrained_weights`` loads the converted checkpoint."""
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoConfig

    from nvidia_tao_pytorch.cv.segformer.utils.checkpoint import initialize_pretrained_weights

    converter = importlib.import_module(f"nvidia_tao_pytorch.cv.{name}.utils.hf_checkpoint_converter")
    build = importlib.import_module(f"nvidia_tao_pytorch.cv.{name}.model.build")
    hf_config = AutoConfig.from_pretrained(os.path.dirname(os.path.abspath(hf_config_path)))
    torch.manual_seed(seed)
    cls = hf_class(list(getattr(hf_config, "architectures", None) or []))
    hf = (cls.from_config(hf_config) if hasattr(cls, "from_config") else cls(hf_config)).eval()
    well_conditioned(hf, seed)
    cfg = OmegaConf.structured(load_object(config_class)())
    tao = build.build_model(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ckpt = os.path.join(tmp, "tao.pth")
        torch.save(converter.tao_checkpoint(converter.convert(tmp), converter.TAO_MODEL), ckpt)
        report = initialize_pretrained_weights(_Holder(tao), ckpt)
    tao.eval()
    return hf, tao, cfg, report, converter


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--config-class", required=True)
    parser.add_argument("--hf-config", required=True)
    parser.add_argument("--hf-features", required=True)
    parser.add_argument("--auto-class", default="", help="unused: the checkpoint's own class is rebuilt")
    parser.add_argument("--size", type=int, default=256, help="input side (capped by the spec's img_size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    result, messages = {"tolerance": args.tolerance}, []
    hf, tao, cfg, report, converter = build_models(args.name, args.config_class, args.hf_config, args.seed)
    result["hf_class"] = type(hf).__name__
    result["mapped_tensors"] = len(converter.MAPPING)
    result["loaded_tensors"] = len(report.loaded_keys)
    result["fresh_tensors"] = len(report.missing_keys)
    result["norm_eps_overrides"] = len(converter.NORM_EPS)
    unexpected = list(report.unmatched_keys) + list(report.shape_mismatched_keys)
    if unexpected:
        messages.append(f"TAO's loader skipped {len(unexpected)} converted tensors: {', '.join(unexpected[:5])}")
    fresh = ("decoder.", "backbone.levels.") if args.hf_features == "vit_map" else ("decoder.",)  # + ViT pyramid
    stray = [k for k in report.missing_keys if not k.startswith(fresh)]
    if stray:
        messages.append(f"{len(stray)} TAO backbone tensors kept their initialisation: {', '.join(stray[:5])}")

    size = max(32, min(args.size, int(cfg.dataset.segment.img_size)) // 32 * 32)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(args.seed + 1))
    store = {}
    handle = tao.decoder.register_forward_pre_hook(lambda _m, a: store.__setitem__("features", list(a[0])))
    stages, hf_handles = capture_stage_outputs(hf, args.hf_features)
    with torch.no_grad():
        output = None if args.hf_features == "vit_map" else hf(pixel_values=x, output_hidden_states=True)
        tao_logits = tao(x)
    for h in (handle, *hf_handles):
        h.remove()
    result["input_shape"] = list(x.shape)
    if args.hf_features == "vit_map":  # a plain ViT under the generated feature pyramid: its fresh levels aside,
        hf_maps, tao_maps = ([m] for m in vit_map_pair(hf, tao.backbone, x))  # the stride-16 map
        result["compared"] = VIT_MAP_COMPARED
    else:
        hf_maps, tao_maps = hf_pyramid(output, args.hf_features, stages), store["features"]
    result["features_shape"] = [list(t.shape) for t in tao_maps]
    if [t.shape for t in hf_maps] != [t.shape for t in tao_maps]:
        messages.append(f"feature pyramids differ in shape: HF {[tuple(t.shape) for t in hf_maps]} vs TAO "
                        f"{[tuple(t.shape) for t in tao_maps]}")
    else:
        result["max_abs_features"] = max((a - b).abs().max().item() for a, b in zip(hf_maps, tao_maps))
        result["feature_scale"] = max(a.abs().max().item() for a in hf_maps)
        if result["max_abs_features"] > args.tolerance:
            messages.append(f"backbone features differ by {result['max_abs_features']:.3g} (> {args.tolerance:g}): "
                            "the converted weights do not reproduce HF")
    decoder_converted = not any(k.startswith("decoder.") for k in report.missing_keys)
    hf_logits = getattr(output, "logits", None)
    if decoder_converted and hf_logits is not None and hf_logits.shape == tao_logits.shape:
        result["max_abs_logits"] = (hf_logits - tao_logits).abs().max().item()
        result["logits_shape"] = list(tao_logits.shape)
        if result["max_abs_logits"] > args.tolerance:
            messages.append(f"decoder logits differ by {result['max_abs_logits']:.3g} (> {args.tolerance:g})")
    else:
        fresh = sorted({k.rsplit(".", 2)[0] for k in report.missing_keys if k.startswith("decoder.")})
        result["logits"] = ("not compared: the SegFormer decoder is not (fully) converted from the HF checkpoint "
                            f"({', '.join(fresh[:4])} keep TAO's initialisation)")
    result["ok"] = not messages
    result["messages"] = messages
    return result


if __name__ == "__main__":
    run(main)
