"""SegFormer (HF ``segformer``): its MiT encoder -> TAO backbone_v2 ``mit_b*``.

Classification ports keep the encoder and a linear head (HF ``SegformerForImageClassification``); the
segmentation task adds SegFormer's all-MLP decoder under TAO's segformer network.
"""

from scaffolder.catalog._types import (
    BN,
    CLASSIFIER_HEAD,
    SEGFORMER_BACKBONE_PREFIX,
    SEGFORMER_DECODER,
    Family,
    KeyRules,
    T,
    TaskRules,
    classifier,
    rule,
    variant,
)

_BLOCK = r"encoder\.block\.(?P<s>\d+)\.(?P<l>\d+)"

MIT_BACKBONE_RULES = KeyRules(
    hf_prefixes=("segformer.",),
    rules=(
        rule(rf"encoder\.patch_embeddings\.(?P<s>\d+)\.proj\.{T}", "patch_embed{s+1}.proj.{t}"),
        rule(rf"encoder\.patch_embeddings\.(?P<s>\d+)\.layer_norm\.{T}", "patch_embed{s+1}.norm.{t}"),
        rule(rf"{_BLOCK}\.layer_norm_1\.{T}", "block{s+1}.{l}.norm1.{t}"),
        rule(rf"{_BLOCK}\.layer_norm_2\.{T}", "block{s+1}.{l}.norm2.{t}"),
        rule(rf"{_BLOCK}\.attention\.self\.query\.{T}", "block{s+1}.{l}.attn.q.{t}"),
        rule(rf"{_BLOCK}\.attention\.self\.(?P<part>key|value)\.{T}", "block{s+1}.{l}.attn.kv.{t}",
             concat=("key", "value")),
        rule(rf"{_BLOCK}\.attention\.self\.sr\.{T}", "block{s+1}.{l}.attn.sr.{t}"),
        rule(rf"{_BLOCK}\.attention\.self\.layer_norm\.{T}", "block{s+1}.{l}.attn.norm.{t}"),
        rule(rf"{_BLOCK}\.attention\.output\.dense\.{T}", "block{s+1}.{l}.attn.proj.{t}"),
        rule(rf"{_BLOCK}\.mlp\.dense1\.{T}", "block{s+1}.{l}.mlp.fc1.{t}"),
        rule(rf"{_BLOCK}\.mlp\.dwconv\.dwconv\.{T}", "block{s+1}.{l}.mlp.dwconv.dwconv.{t}"),
        rule(rf"{_BLOCK}\.mlp\.dense2\.{T}", "block{s+1}.{l}.mlp.fc2.{t}"),
        rule(rf"encoder\.layer_norm\.(?P<s>\d+)\.{T}", "norm{s+1}.{t}"),
    ),
    tao_kwargs=(
        ("embed_dims", lambda c: list(c["hidden_sizes"])),
        ("depths", lambda c: list(c["depths"])),
        ("num_heads", lambda c: list(c["num_attention_heads"])),
        ("sr_ratios", lambda c: list(c["sr_ratios"])),
        ("mlp_ratios", lambda c: list(c["mlp_ratios"])),
    ),
)



def _plan_params(config, _preprocessor=None):
    """HF SegFormer's decoder geometry; its decoder is converted only when the checkpoint has one."""
    has_decoder = any(str(a).endswith("ForSemanticSegmentation") for a in config.get("architectures") or ())
    return {
        "pyramid_channels": [int(w) for w in config["hidden_sizes"]],
        "decoder_embed_dim": int(config.get("decoder_hidden_size", 256)),
        "decoder_source": "converted" if has_decoder else "fresh",
    }


# HF SegformerDecodeHead -> TAO TAOSegFormerHead. Both concatenate [c4, c3, c2, c1] before linear_fuse
# (segformer_head.py:114); TAO's fuse conv has a bias HF's lacks, so it is zero (the BatchNorm follows it).
SEGMENTATION = TaskRules(
    tao_backbone_prefix=SEGFORMER_BACKBONE_PREFIX,
    rules=(
        rule(rf"decode_head\.linear_c\.(?P<i>\d+)\.proj\.{T}", "decoder.linear_c{i+1}.proj.{t}"),
        rule(r"decode_head\.linear_fuse\.weight", "decoder.linear_fuse.0.weight"),
        rule(rf"decode_head\.batch_norm\.{BN}", "decoder.linear_fuse.1.{t}"),
        rule(rf"decode_head\.classifier\.{T}", "decoder.linear_pred.{t}"),
    ),
    fill=((r"decoder\.linear_fuse\.0\.bias", 0.0,
           "TAO's linear_fuse conv has a bias, HF's has none (bias=False); zero reproduces HF"),),
    ignore=((r"classifier\..*", "SegformerForImageClassification's ImageNet head; the SegFormer decoder starts fresh"),),
    tao_head=r"decoder\.linear_pred\..*",
    tao_fresh=SEGFORMER_DECODER,
    hf_features="hidden_states:0,1,2,3",
    plan_params=_plan_params,
    notes="MiT encoder and the all-MLP decoder map one to one onto TAO's segformer (mit_b*, TAOSegFormerHead)",
)

FAMILY = Family(
    name="segformer",
    model_types=("segformer",),
    backbone_rules=MIT_BACKBONE_RULES,
    tasks={
        "classification": classifier(
            CLASSIFIER_HEAD,
            ignore=((r"decode_head\..*",
                     "SegFormer's all-MLP segmentation decoder; the classification port keeps the MiT encoder"),),
        ),
        "segmentation": SEGMENTATION,
    },
    notes="MiT encoder of SegFormer; classification ports use the encoder only",
    variants=(
        variant("mit_b0", 256, hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2]),
        variant("mit_b1", 512, hidden_sizes=[64, 128, 320, 512], depths=[2, 2, 2, 2]),
        variant("mit_b2", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 6, 3]),
        variant("mit_b3", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 4, 18, 3]),
        variant("mit_b4", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 8, 27, 3]),
        variant("mit_b5", 512, hidden_sizes=[64, 128, 320, 512], depths=[3, 6, 40, 3]),
    ),
)
