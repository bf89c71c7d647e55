"""CvT (HF ``cvt``): neither TAO nor timm has it; the port generates a backbone wrapping the transformers
model. No weight-conversion rules yet."""

from scaffolder.catalog._types import Family, TaskRules, Variant

FAMILY = Family(
    name="cvt",
    model_types=("cvt",),
    tasks={"classification": TaskRules()},
    notes="the generated backbone composes transformers' CvtForImageClassification (CvtConfig defaults = cvt-13)",
    missing_reason="TAO 7.3 has no CvT backbone and timm has no CvT architecture",
    variants=(
        Variant(
            "cvt_13_hf",
            384,
            {"embed_dim": [64, 192, 384], "depth": [1, 2, 10], "num_heads": [1, 3, 6]},
            strategy="hf_wrapper",
        ),
    ),
)
