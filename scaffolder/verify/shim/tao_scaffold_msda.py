"""TAO's MultiScaleDeformableAttention where its CUDA op library cannot load (verification environment only).

TAO's detectors build ``MultiScaleDeformableAttention`` (``deformable_detr/model/ops/modules.py``), whose
``__init__`` loads ``MultiScaleDeformableAttention.cpython-312-*.so`` and whose forward, for CUDA tensors, calls
that library's ops through ``MSDeformAttnFunction``. The library is missing where the TAO wheel was unpacked
without its compiled files (``scaffolder.tao_wheels``: the CPU test environment, and a GPU host whose torch the
prebuilt ``.so`` does not match), so TAO would fail at model construction (CPU and GPU) and at the first CUDA
forward. :func:`patch` makes ``load_ops`` tolerate a library that cannot load and puts a dispatcher in place of
``MSDeformAttnFunction``: TAO's own op while it is registered, else TAO's own pure-PyTorch
``multi_scale_deformable_attn_pytorch`` (the path TAO takes for CPU tensors; ``grid_sample``, autograd through
PyTorch). Where the library loads (TAO's GPU containers) nothing changes.

Not covered: ``forward(..., export=True)`` on CUDA calls the TensorRT plugin op directly (an ONNX graph for
TensorRT only); verify exports detection ports on CPU (``TaskSupport.export_on_cpu``).

Used by ``sitecustomize.py`` beside this file (the child processes of verify, any device) and by
``scaffolder.convert.tao_models`` / ``scripts/bench_port_throughput.py`` in-process. Standard library + torch only.
"""

from __future__ import annotations

import sys

FUNCTIONS = "nvidia_tao_pytorch.cv.deformable_detr.model.ops.functions"
# Modules that bind ``MSDeformAttnFunction`` / ``load_ops`` by name from FUNCTIONS at import.
USERS = (
    "nvidia_tao_pytorch.cv.deformable_detr.model.ops.modules",
    "nvidia_tao_pytorch.cv.deformable_detr.model.ops.gdino_modules",
    "nvidia_tao_pytorch.cv.deformable_detr.model.ops.mask2former_modules",
)
OP_NAME = "MultiscaleDeformableAttnPlugin_TRT"
MARK = "tao_scaffold_msda"
_STATE = {"op": False, "fallback_calls": 0}


def op_registered() -> bool:
    """Whether TAO's CUDA op library is loaded (its forward op is registered); a True answer is cached."""
    if _STATE["op"]:
        return True
    import torch

    try:
        getattr(torch.ops.nvidia, OP_NAME)
    except (AttributeError, RuntimeError):
        return False
    _STATE["op"] = True
    return True


def fallback_calls() -> int:
    """How many forwards took the pure-PyTorch path instead of TAO's CUDA op (0 on a CPU-only run)."""
    return _STATE["fallback_calls"]


def _pytorch_msda(value, spatial_shapes, level_start_index, sampling_locations, attention_weights, im2col_step=64,
                  deterministic=False):
    from nvidia_tao_pytorch.cv.deformable_detr.model.ops.modules import multi_scale_deformable_attn_pytorch

    _STATE["fallback_calls"] += 1
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations, attention_weights,
                                               deterministic=bool(deterministic))


def _dispatcher(original):
    class MSDeformAttnFunction:  # pylint: disable=too-few-public-methods
        """TAO's ``MSDeformAttnFunction`` while its CUDA op is registered, else TAO's pure-PyTorch MSDA."""

        tao_scaffold_msda = True
        wrapped = original

        @staticmethod
        def apply(*args):
            if op_registered():
                return original.apply(*args)
            return _pytorch_msda(*args)

    return MSDeformAttnFunction


def _tolerant(original):
    def load_ops(ops_dir, lib_name):
        try:
            return original(ops_dir, lib_name)
        except OSError:  # missing / unloadable .so: the dispatcher takes TAO's pure-PyTorch path
            return None

    load_ops.tao_scaffold_msda = True
    load_ops.__wrapped__ = original
    return load_ops


def patch(functions=None) -> None:
    """Patch FUNCTIONS (given, or imported now) and any already-imported USERS; idempotent."""
    if functions is None:
        import importlib

        functions = importlib.import_module(FUNCTIONS)
    load_ops = getattr(functions, "load_ops", None)
    if load_ops is not None and not getattr(load_ops, MARK, False):
        functions.load_ops = _tolerant(load_ops)
    function = getattr(functions, "MSDeformAttnFunction", None)
    if function is not None and not getattr(function, MARK, False):
        functions.MSDeformAttnFunction = _dispatcher(function)
    for name in USERS:
        user = sys.modules.get(name)
        if user is None:
            continue
        for attr in ("load_ops", "MSDeformAttnFunction"):
            if hasattr(user, attr) and hasattr(functions, attr):
                setattr(user, attr, getattr(functions, attr))
