"""Versions of the target environment: ``python env_info.py --out result.json [--gpu]``.

Package versions come from their metadata (nothing heavy is imported), except with ``--gpu``, where torch
is imported to name the CUDA device.
"""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata

from _common import run  # pylint: disable=import-error

PACKAGES = ("torch", "torchvision", "pytorch-lightning", "timm", "onnx", "onnxruntime", "onnxruntime-gpu",
            "tensorrt", "pycuda", "numpy", "pillow", "hydra-core", "omegaconf", "nvidia-tao-core",
            "nvidia-tao-pytorch", "nvidia-tao-deploy")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out = {"ok": True, "python": sys.version.split()[0], "platform": platform.platform(), "packages": versions}
    if args.gpu:
        try:
            import torch

            out["cuda_available"] = torch.cuda.is_available()
            if out["cuda_available"]:
                out["gpu"] = torch.cuda.get_device_name(0)
                out["cuda"] = torch.version.cuda
        except Exception as exc:  # noqa: BLE001
            out["cuda_error"] = f"{type(exc).__name__}: {exc}"
    return out


if __name__ == "__main__":
    run(main)
