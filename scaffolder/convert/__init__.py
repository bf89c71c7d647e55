"""HF -> TAO weight conversion: derived key mapping, runtime applier, parity check, checkpoint conversion.

* ``engine.derive_mapping(hf_schema, tao_schema, family) -> WeightMapping`` (rules live in the catalog)
* ``runtime.apply_mapping(hf_state_dict, table)`` -- self-contained, copied into generated converters
* ``parity.check_parity(backbone, hf_config, seed=) -> ParityResult`` -- HF vs TAO numerics
* ``checkpoint.convert_checkpoint(hf_weights, family, tao_schema, num_classes=)`` -- the CLI core

Torch is imported by these modules; import them lazily from CLI code paths that must stay light.
"""

from scaffolder.convert.checkpoint import (
    ConversionReport,
    WeightConversionError,
    convert_checkpoint,
    save_tao_checkpoint,
)
from scaffolder.convert.engine import HeadSkip, MappingEntry, WeightMapping, derive_mapping, schema_of
from scaffolder.convert.parity import ParityError, ParityResult, build_tao_model, check_parity
from scaffolder.convert.runtime import apply_mapping, load_hf_state_dict, tao_checkpoint

__all__ = [
    "ConversionReport",
    "HeadSkip",
    "MappingEntry",
    "ParityError",
    "ParityResult",
    "WeightConversionError",
    "WeightMapping",
    "apply_mapping",
    "build_tao_model",
    "check_parity",
    "convert_checkpoint",
    "derive_mapping",
    "load_hf_state_dict",
    "save_tao_checkpoint",
    "schema_of",
    "tao_checkpoint",
]
