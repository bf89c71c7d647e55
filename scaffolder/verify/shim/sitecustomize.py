"""Shim for the child processes of ``tao-scaffold verify`` (verification environment only).

This file is put on ``PYTHONPATH`` of the child processes that verify starts (any ``--device``); it is never
copied into a generated port. Two patches, each applied the moment its TAO module is first imported (a
post-import hook on ``sys.meta_path``), before any script can bind the originals:

* CPU forcing, only when ``TAO_SCAFFOLD_FORCE_CPU=1`` (``--device cpu``). TAO 7.3's
  ``nvidia_tao_pytorch.core.initialize_experiments`` hard-codes ``accelerator='gpu'`` and a list of GPU ids (from
  ``TAO_VISIBLE_DEVICES``) in the Trainer kwargs of ``initialize_train_experiment``,
  ``initialize_evaluation_experiment`` and ``initialize_inference_experiment``. The wrappers call TAO's function,
  then return ``accelerator='cpu'`` and one CPU device. The device count is an ``int`` subclass with
  ``len() == 1`` because TAO scripts (and generated ones) test ``len(trainer_kwargs["devices"]) > 1`` while
  Lightning's CPU accelerator accepts only ints.
* MultiScaleDeformableAttention without its CUDA op library, always (``tao_scaffold_msda.py`` beside this file):
  TAO's detectors load a CUDA ``.so`` in ``MSDeformAttn.__init__`` and call its ops for CUDA tensors; where the
  library cannot load (the wheel unpacked without its compiled files: CPU machines, and GPU hosts whose torch
  the prebuilt ``.so`` does not match) ``load_ops`` becomes a no-op and the forward takes TAO's pure-PyTorch
  ``grid_sample`` path, on CPU and on CUDA tensors (forward, training, CPU ONNX export). Where the library
  loads (TAO's GPU containers) nothing changes.

Chains to any other ``sitecustomize`` further down the path so the environment's own customisation still runs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

TARGET = "nvidia_tao_pytorch.core.initialize_experiments"
WRAPPED = ("initialize_train_experiment", "initialize_evaluation_experiment", "initialize_inference_experiment")
MSDA_OPS = "nvidia_tao_pytorch.cv.deformable_detr.model.ops.functions"


class CpuDevices(int):
    """One CPU device that also answers ``len()`` (TAO code treats ``devices`` as a list of GPU ids)."""

    def __len__(self) -> int:
        return int(self)

    def __iter__(self):
        return iter(range(int(self)))


def _force_cpu(kwargs):
    if isinstance(kwargs, dict):
        kwargs["accelerator"] = "cpu"
        kwargs["devices"] = CpuDevices(1)
        if kwargs.get("strategy") not in (None, "auto"):
            kwargs["strategy"] = "auto"
    return kwargs


def _wrap(function):
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        if isinstance(result, tuple) and len(result) == 2:
            return result[0], _force_cpu(result[1])
        return result

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    wrapper.__wrapped__ = function
    wrapper.tao_scaffold_cpu_shim = True
    return wrapper


def patch_msda(module) -> None:
    """TAO's MSDA ops module: tolerant ``load_ops``, pure-PyTorch fallback when the op library is absent."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import tao_scaffold_msda  # pylint: disable=import-outside-toplevel,import-error
    finally:
        sys.path.pop(0)
    tao_scaffold_msda.patch(module)


def patch(module) -> None:
    """Replace the TAO initialize_* functions of ``module`` with CPU-forcing wrappers (idempotent)."""
    if module.__name__ == MSDA_OPS:
        patch_msda(module)
        return
    for name in WRAPPED:
        function = getattr(module, name, None)
        if function is not None and not getattr(function, "tao_scaffold_cpu_shim", False):
            setattr(module, name, _wrap(function))


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        patch(module)


class _PostImportHook(importlib.abc.MetaPathFinder):
    def __init__(self, names):
        self.names = tuple(names)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader)
        return spec


def _chain_next_sitecustomize() -> None:
    """Run the ``sitecustomize`` this file shadows, if the environment has one."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_tao_scaffold_next_sitecustomize", candidate)
            if spec and spec.loader:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


_HOOKED = (TARGET, MSDA_OPS) if os.environ.get("TAO_SCAFFOLD_FORCE_CPU") == "1" else (MSDA_OPS,)
if TARGET in _HOOKED:
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
for _name in _HOOKED:
    if _name in sys.modules:
        patch(sys.modules[_name])
sys.meta_path.insert(0, _PostImportHook(_HOOKED))
_chain_next_sitecustomize()
