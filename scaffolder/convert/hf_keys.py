"""HF state dicts under their *checkpoint* key names, whatever transformers is installed.

From transformers 5.9 on (DINOv2: 5.18) many vision models rename their modules in memory
(``vit.layers.N.attention.q_proj``) while checkpoint files -- on the hub and from ``save_pretrained`` --
keep the old names (``vit.encoder.layer.N.attention.attention.query``). A port's converter reads checkpoint
files, so every mapping is derived against the checkpoint names: ``transformers.core_model_loading.
revert_weight_conversion`` gives them for an in-memory model (present in 5.x; older versions have no renames).
"""

from __future__ import annotations

from typing import Any


def checkpoint_view(model: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(state dict under checkpoint key names, checkpoint key -> in-memory key where they differ)."""
    state = dict(model.state_dict(keep_vars=True))  # Parameters: tied weights keep one identity
    try:
        from transformers.core_model_loading import revert_weight_conversion  # pylint: disable=import-outside-toplevel
    except ImportError:  # transformers 4.x: memory and checkpoint names are the same
        return state, {}
    reverted = dict(revert_weight_conversion(model, dict(state)))
    by_identity = {id(tensor): key for key, tensor in state.items()}
    renamed = {key: by_identity[id(tensor)] for key, tensor in reverted.items()
               if id(tensor) in by_identity and by_identity[id(tensor)] != key}
    return reverted, renamed
