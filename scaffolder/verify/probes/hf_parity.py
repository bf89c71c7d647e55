"""HF model vs the port's TAO model, through the port's own generated weight converter.

    python hf_parity.py --name NAME --config-class mod:ExperimentConfig --hf-config config.json
        [--hf-features classifier_input|pooler_output|tokens:0,1] [--seed 0] [--tolerance 1e-4] --out result.json

The HF model is built from its config with seeded random weights (no download) and saved with
save_pretrained; the port's ``utils/hf_checkpoint_converter.py`` converts that folder; the port's
``model/build.py`` builds the TAO model and loads the result through ``model.backbone.pretrained_backbone_path``
(TAO's own loader). Same input -> pre-logit features (and logits when the head was converted) compared.
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile

from _common import load_object, randomize, run


def capture(module, store, key, *, output=False, pick=None):
    def hook(_m, args, out=None):
        value = out if output else args[0]
        store[key] = (pick(value) if pick else value).detach()

    if output:
        return module.register_forward_hook(lambda m, a, o: hook(m, a, o))
    return module.register_forward_pre_hook(lambda m, a: hook(m, a))


def build_models(name, config_class, hf_config_path, auto_class, seed=0):
    """(HF model with seeded random weights, the port's TAO model with those weights converted, the port's config,
    the HF config, the port's converter module), both in eval mode -- also used by scripts/bench_port_throughput.py.

    The port's converter converts the saved HF folder; ``model/build.py`` builds the TAO model and loads the result
    through ``model.backbone.pretrained_backbone_path`` (TAO's own loader)."""
    import torch
    from omegaconf import OmegaConf
    import transformers
    from transformers import AutoConfig

    converter = importlib.import_module(f"nvidia_tao_pytorch.cv.{name}.utils.hf_checkpoint_converter")
    build = importlib.import_module(f"nvidia_tao_pytorch.cv.{name}.model.build")
    hf_config = AutoConfig.from_pretrained(os.path.dirname(os.path.abspath(hf_config_path)))
    torch.manual_seed(seed)
    hf = getattr(transformers, auto_class).from_config(hf_config).eval()
    randomize(hf, seed)
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ckpt = os.path.join(tmp, "tao.pth")
        torch.save(converter.tao_checkpoint(converter.convert(tmp), converter.TAO_MODEL), ckpt)
        cfg = OmegaConf.structured(load_object(config_class)())
        cfg.model.backbone.pretrained_backbone_path = ckpt
        tao = build.build_model(cfg).eval()
    return hf, tao, cfg, hf_config, converter


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--config-class", required=True)
    parser.add_argument("--hf-config", required=True)
    parser.add_argument("--hf-features", default="classifier_input")
    parser.add_argument("--auto-class", required=True, help="transformers auto class of the task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    result, messages = {"tolerance": args.tolerance}, []
    hf, tao, cfg, hf_config, converter = build_models(args.name, args.config_class, args.hf_config, args.auto_class,
                                                      args.seed)
    result["mapped_tensors"] = len(converter.MAPPING)
    result["norm_eps_overrides"] = len(converter.NORM_EPS)

    size = int(cfg.dataset.img_size)
    x = torch.randn(2, int(getattr(hf_config, "num_channels", 3)), size, size,
                    generator=torch.Generator().manual_seed(args.seed + 1))
    store = {}
    head = tao.get_classifier() if hasattr(tao, "get_classifier") else tao.head
    handles = [capture(head, store, "tao")]
    mode = args.hf_features
    if mode == "classifier_input":
        handles.append(capture(hf.classifier, store, "hf"))
    elif mode == "pooler_output":
        handles.append(capture(hf.base_model, store, "hf", output=True, pick=lambda o: o.pooler_output))
    elif mode.startswith("tokens:"):
        idx = [int(i) for i in mode.split(":", 1)[1].split(",")]
        handles.append(capture(hf.base_model, store, "hf", output=True,
                               pick=lambda o: o.last_hidden_state[:, idx].mean(dim=1)))
    else:
        raise SystemExit(f"unknown --hf-features {mode}")
    with torch.no_grad():
        hf_logits = hf(pixel_values=x).logits
        tao_logits = tao(x)
        if "tao" not in store:  # a head the forward does not call as one module (e.g. distilled heads)
            store["tao"] = tao.forward_pre_logits(x)
            result["tao_features"] = "forward_pre_logits"
    for handle in handles:
        handle.remove()

    hf_feat, tao_feat = store["hf"].reshape(2, -1), store["tao"].reshape(2, -1)
    result["features_shape"] = list(tao_feat.shape)
    if hf_feat.shape != tao_feat.shape:
        messages.append(f"pre-logit feature shapes differ: HF {tuple(hf_feat.shape)} vs TAO {tuple(tao_feat.shape)}")
    else:
        result["max_abs_features"] = (hf_feat - tao_feat).abs().max().item()
        if result["max_abs_features"] > args.tolerance:
            messages.append(f"pre-logit features differ by {result['max_abs_features']:.3g} "
                            f"(> {args.tolerance:g}): the converted weights do not reproduce HF")
    head_ids = {id(p) for p in head.parameters()}
    head_keys = {n for n, p in tao.named_parameters() if id(p) in head_ids}
    head_converted = any(row[0] in head_keys for row in converter.MAPPING)
    if head_converted and hf_logits.shape == tao_logits.shape:
        result["max_abs_logits"] = (hf_logits - tao_logits).abs().max().item()
        if result["max_abs_logits"] > args.tolerance:
            messages.append(f"logits differ by {result['max_abs_logits']:.3g} (> {args.tolerance:g})")
    else:
        result["logits"] = (f"not compared: the port's head ({tuple(tao_logits.shape)[1]} classes) is not converted "
                            f"from HF's ({tuple(hf_logits.shape)[1]} classes)")
    result["ok"] = not messages
    result["messages"] = messages
    return result


if __name__ == "__main__":
    run(main)
