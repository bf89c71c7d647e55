"""SegFormer (HF ``segformer``): its MiT encoder -> TAO backbone_v2 ``mit_b*``.

Classification ports keep the encoder and a linear head (HF ``SegformerForImageClassification``); the
segmentation task adds SegFormer's all-MLP decoder under TAO's segformer network.
"""

from scaffolder.catalog._types import CLASSIFIER_HEAD, Family, KeyRules, T, classifier, rule, variant

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
