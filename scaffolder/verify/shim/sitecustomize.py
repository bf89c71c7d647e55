"""CPU-forcing shim for ``tao-scaffold verify --device cpu`` (verification environment only).

This file is put on ``PYTHONPATH`` of the child processes that verify starts; it is never copied into a
generated port. TAO 7.3's ``nvidia_tao_pytorch.core.initialize_experiments`` hard-codes
``accelerator='gpu'`` and a list of GPU ids (from ``TAO_VISIBLE_DEVICES``) in the Trainer kwargs of
``initialize_train_experiment``, ``initialize_evaluation_experiment`` and
``initialize_inference_experiment``. Generated scripts import those functions by name, so the module is
patched the moment it is first imported (a post-import hook on ``sys.meta_path``), before any script can
bind the originals: the wrappers call TAO's function, then return ``accelerator='cpu'`` and one CPU
device. The device count is an ``int`` subclass with ``len() == 1`` because TAO scripts (and generated
ones) test ``len(trainer_kwargs["devices"]) > 1`` while Lightning's CPU accelerator accepts only ints.

TAO's detectors build ``MultiScaleDeformableAttention``, whose ``__init__`` loads a CUDA ``.so``
(``deformable_detr/model/ops/modules.py``; the wheel ships a cp312 build linked against CUDA): on a CPU-only
verification machine that raises. The shim makes ``ops.functions.load_ops`` a no-op *when the library cannot
load*, before ``modules.py`` imports it by name; TAO's pure-PyTorch ``grid_sample`` path then runs (forward,
training, CPU ONNX export). Where the library loads (TAO's GPU containers) nothing changes.

Active only when ``TAO_SCAFFOLD_FORCE_CPU=1``; chains to any other ``sitecustomize`` further down the
path so the environment's own customisation still runs.
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
    """``load_ops`` that tolerates a CUDA op library that cannot load (idempotent)."""
    original = getattr(module, "load_ops", None)
    if original is None or getattr(original, "tao_scaffold_cpu_shim", False):
        return

    def load_ops(ops_dir, lib_name):
        try:
            return original(ops_dir, lib_name)
        except OSError:  # no CUDA / other Python: TAO falls back to its grid_sample implementation
            return None

    load_ops.tao_scaffold_cpu_shim = True
    module.load_ops = load_ops


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
    def find_spec(self, fullname, path, target=None):
        if fullname not in (TARGET, MSDA_OPS):
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


if os.environ.get("TAO_SCAFFOLD_FORCE_CPU") == "1":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    for _name in (TARGET, MSDA_OPS):
        if _name in sys.modules:
            patch(sys.modules[_name])
    sys.meta_path.insert(0, _PostImportHook())
_chain_next_sitecustomize()
