"""HF -> TAO weight conversion: derived key mapping, runtime applier, parity check, checkpoint conversion.

* ``engine.derive_mapping(hf_schema, tao_schema, family) -> WeightMapping`` (rules live in the catalog)
* ``runtime.apply_mapping(hf_state_dict, table)`` -- self-contained, copied into generated converters
* ``parity.check_parity(backbone, hf_config, seed=) -> ParityResult`` -- HF vs TAO numerics
* ``checkpoint.convert_checkpoint(hf_weights, family, tao_schema, num_classes=)`` -- the CLI core

Torch is imported by these modules; import them lazily from CLI code paths that must stay light.
"""

import importlib

# Lazy (PEP 562): importing the package must not import torch -- the CLI registers its command from here.
_EXPORTS = {
    "checkpoint": ("ConversionReport", "WeightConversionError", "convert_checkpoint", "save_tao_checkpoint"),
    "engine": ("HeadSkip", "MappingEntry", "WeightMapping", "derive_mapping", "schema_of"),
    "parity": ("ParityError", "ParityResult", "build_tao_model", "check_parity"),
    "runtime": ("apply_mapping", "load_hf_state_dict", "tao_checkpoint"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"scaffolder.convert.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'scaffolder.convert' has no attribute {name!r}")
