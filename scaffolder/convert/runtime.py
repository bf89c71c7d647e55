"""Apply an HF -> TAO weight-mapping table (the runtime half of tao-scaffold's weight conversion).

This module is copied verbatim into each port's generated ``hf_checkpoint_converter.py``, so it must
stay self-contained: standard library + torch only (safetensors is imported lazily, and TAO's own
``ptm_utils`` already depends on it). No tao-scaffold imports.

A mapping table is a list of rows ``(tao_key, hf_keys, ops)``:

* ``tao_key``  -- key in the TAO backbone's state dict
* ``hf_keys``  -- tuple of HF state-dict keys feeding it (empty for ``fill``)
* ``ops``      -- tuple of ``(op, arg)`` steps applied in order; the first step combines the sources:

  ``("copy", None)``         the single source tensor as is
  ``("concat", dim)``        ``torch.cat(sources, dim)`` (q/k/v -> qkv, k/v -> kv)
  ``("reshape", shape)``     same data, new shape (only where the element count is unchanged)
  ``("permute", dims)``      ``tensor.permute(*dims)``
  ``("squeeze", dim)`` / ``("unsqueeze", dim)``
  ``("fill", (value, shape))``  a constant tensor; only for TAO tensors with no HF counterpart
  ``("optional", None)``     first step of rows a checkpoint may lack (the task head of a base-model checkpoint,
                             buffers TAO computes itself): the row is skipped when its sources are absent
  ``("first_of", None)``     marker before ``copy``: ``hf_keys`` are the names of one tied HF tensor (which one
                             ``save_pretrained`` keeps depends on the config and the transformers version);
                             the first name the checkpoint has is the source

HF keys are the checkpoint's own names. A base-model checkpoint (``Dinov2Model``) stores them without the
task model's prefix (``dinov2.``): a key the table needs is also found with its first component stripped.
"""

import glob
import json
import os

import torch

OPS = ("copy", "concat", "reshape", "permute", "squeeze", "unsqueeze", "fill", "optional", "first_of")
MARKERS = ("optional", "first_of")  # steps that say how to read a row's sources, not what to compute


def _find(hf_state_dict, key):
    """``key`` in the checkpoint, or the same key without its first component (a base-model checkpoint)."""
    if key in hf_state_dict:
        return key
    stripped = key.split(".", 1)[1] if "." in key else None
    return stripped if stripped in hf_state_dict else None


def apply_mapping(hf_state_dict, table):
    """Return the TAO state dict built from ``hf_state_dict`` by the rows of ``table``.

    Raises ``KeyError`` naming every HF key the table needs that ``hf_state_dict`` lacks.
    """
    needed, rows = [], []
    for tao_key, hf_keys, ops in table:
        markers = {op for op, _ in ops if op in MARKERS}
        found = [_find(hf_state_dict, k) for k in hf_keys]
        if "first_of" in markers:  # alternative names of one tensor: the first present, or the first name missing
            present = [f for f in found if f is not None]
            found, hf_keys = (present[:1], hf_keys[:1]) if present else ([None], hf_keys[:1])
        if None in found:
            if "optional" in markers:
                continue
            needed.extend(k for k, f in zip(hf_keys, found) if f is None)
        rows.append((tao_key, found, ops))
    if needed:
        shown = ", ".join(needed[:10]) + (f" ... (+{len(needed) - 10} more)" if len(needed) > 10 else "")
        raise KeyError(f"HF checkpoint lacks {len(needed)} tensor(s) the mapping needs: {shown}")
    out = {}
    for tao_key, hf_keys, ops in rows:
        sources = [hf_state_dict[k] for k in hf_keys]
        tensor = None
        for op, arg in ops:
            if op in MARKERS:
                continue
            if op == "copy":
                (tensor,) = sources
            elif op == "concat":
                tensor = torch.cat(sources, dim=arg)
            elif op == "reshape":
                tensor = tensor.reshape(tuple(arg))
            elif op == "permute":
                tensor = tensor.permute(*arg)
            elif op == "squeeze":
                tensor = tensor.squeeze(arg)
            elif op == "unsqueeze":
                tensor = tensor.unsqueeze(arg)
            elif op == "fill":
                value, shape = arg
                tensor = torch.full(tuple(shape), float(value))
            else:
                raise ValueError(f"{tao_key}: unknown op {op!r} (known: {', '.join(OPS)})")
        if tensor is None:
            raise ValueError(f"{tao_key}: row has no ops")
        out[tao_key] = tensor.detach().contiguous()
    return out


def load_hf_state_dict(path):
    """Read an HF checkpoint: a ``.safetensors`` / ``.bin`` / ``.pt`` file, or a model directory
    (``model.safetensors``, sharded ``*.safetensors`` with an index, or ``pytorch_model*.bin``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = []
        for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
            index = os.path.join(path, index_name)
            if os.path.isfile(index):
                with open(index, encoding="utf-8") as fh:
                    shards = sorted(set(json.load(fh)["weight_map"].values()))
                files = [os.path.join(path, s) for s in shards]
                break
        if not files:
            files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
        if not files:
            files = sorted(glob.glob(os.path.join(path, "pytorch_model*.bin")))
        if not files:
            raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin weights in {path}")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise FileNotFoundError(f"no such checkpoint: {path}")
    state_dict = {}
    for file in files:
        if file.endswith(".safetensors"):
            from safetensors.torch import load_file  # pylint: disable=import-outside-toplevel

            part = load_file(file, device="cpu")
        else:
            part = torch.load(file, map_location="cpu", weights_only=True)
            for wrapper in ("state_dict", "model"):
                if isinstance(part, dict) and isinstance(part.get(wrapper), dict):
                    part = part[wrapper]
        state_dict.update(part)
    return state_dict


def tao_checkpoint(state_dict, tao_model):
    """Wrap a TAO state dict so that TAO's ``load_pretrained_weights`` returns it unchanged.

    ``model.backbone.pretrained_backbone_path`` checkpoints go through
    ``nvidia_tao_pytorch.core.utils.ptm_utils.load_pretrained_weights``: a dict with ``"state_dict"`` is
    unwrapped and passed to classification's ``cls_parser``, which rewrites keys containing ``module`` or
    starting with ``backbone.`` / ``model.`` / ``ema_``. When no key would be touched the plain
    ``{"state_dict": ...}`` layout is used; otherwise TAO's own checkpoint layout (``tao_model`` = the
    network, e.g. ``"classification"``, keys prefixed ``model.``, stripped once by ``ptm_adapter``) keeps every
    key intact. An empty ``tao_model``: the network's own loader reads the plain layout with the model's keys
    (TAO segformer's ``initialize_pretrained_weights``, which has no ``tao_model`` adapter).
    """
    touched = [k for k in state_dict if "module" in k or k.startswith(("backbone.", "model.", "ema_"))]
    if not touched or not tao_model:
        return {"state_dict": dict(state_dict)}
    return {"tao_model": tao_model, "state_dict": {"model." + k: v for k, v in state_dict.items()}}
