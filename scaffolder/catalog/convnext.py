"""ConvNeXt v1 and v2 (HF ``convnext``, ``convnextv2``) -> TAO backbone_v2 ``convnext_*`` / ``convnextv2_*``."""

from scaffolder.catalog._types import CLASSIFIER_HEAD, Family, KeyRules, T, classifier, rule, under_segformer, variant

_LAYER = r"encoder\.stages\.(?P<s>\d+)\.layers\.(?P<l>\d+)"

BACKBONE_RULES = KeyRules(  # v2: GRN instead of layer scale
    hf_prefixes=("convnext.", "convnextv2."),
    rules=(
        rule(rf"embeddings\.patch_embeddings\.{T}", "downsample_layers.0.0.{t}"),
        rule(rf"embeddings\.layernorm\.{T}", "downsample_layers.0.1.{t}"),
        rule(rf"encoder\.stages\.(?P<s>\d+)\.downsampling_layer\.(?P<j>[01])\.{T}", "downsample_layers.{s}.{j}.{t}"),
        rule(rf"{_LAYER}\.layer_scale_parameter", "stages.{s}.{l}.gamma"),
        rule(rf"{_LAYER}\.layernorm\.{T}", "stages.{s}.{l}.norm.{t}"),
        rule(rf"{_LAYER}\.(?P<m>dwconv|pwconv1|pwconv2)\.{T}", "stages.{s}.{l}.{m}.{t}"),
        rule(rf"{_LAYER}\.grn\.weight", "stages.{s}.{l}.grn.gamma"),
        rule(rf"{_LAYER}\.grn\.bias", "stages.{s}.{l}.grn.beta"),
        rule(rf"layernorm\.{T}", "norm.{t}"),
    ),
    tao_kwargs=(("dims", lambda c: list(c["hidden_sizes"])), ("depths", lambda c: list(c["depths"]))),
)
TASKS = {
    "classification": classifier(CLASSIFIER_HEAD),
    # backbone_v2 ConvNeXt's forward_feature_pyramid: the 4 stage outputs = HF hidden_states[1:] (0 is the stem)
    "segmentation": under_segformer(lambda c: c["hidden_sizes"], "hidden_states:1,2,3,4"),
}

FAMILIES = (
    Family(
        name="convnext",
        model_types=("convnext",),
        backbone_rules=BACKBONE_RULES,
        tasks=TASKS,
        variants=(
            variant("convnext_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            variant("convnext_small", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 27, 3]),
            variant("convnext_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            variant("convnext_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            variant("convnext_xlarge", 2048, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 3, 27, 3]),
        ),
    ),
    Family(
        name="convnextv2",
        model_types=("convnextv2",),
        backbone_rules=BACKBONE_RULES,
        tasks=TASKS,
        variants=(
            variant("convnextv2_atto", 320, hidden_sizes=[40, 80, 160, 320], depths=[2, 2, 6, 2]),
            variant("convnextv2_femto", 384, hidden_sizes=[48, 96, 192, 384], depths=[2, 2, 6, 2]),
            variant("convnextv2_pico", 512, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 6, 2]),
            variant("convnextv2_nano", 640, hidden_sizes=[80, 160, 320, 640], depths=[2, 2, 8, 2]),
            variant("convnextv2_tiny", 768, hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3]),
            variant("convnextv2_base", 1024, hidden_sizes=[128, 256, 512, 1024], depths=[3, 3, 27, 3]),
            variant("convnextv2_large", 1536, hidden_sizes=[192, 384, 768, 1536], depths=[3, 3, 27, 3]),
            variant("convnextv2_huge", 2816, hidden_sizes=[352, 704, 1408, 2816], depths=[3, 3, 27, 3]),
        ),
    ),
)
