"""Is TensorRT usable here?  ``python trt_check.py --out result.json [--modules tensorrt,pycuda.driver]``

``ok`` is True when every module imports; ``versions`` and, on failure, ``error`` (the first import
error, verbatim) say why not. Importing ``pycuda.driver`` does not create a CUDA context.
"""

from __future__ import annotations

import argparse
import importlib

from _common import run  # pylint: disable=import-error


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", default="tensorrt,pycuda.driver")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    versions, errors = {}, {}
    for name in [m for m in args.modules.split(",") if m]:
        try:
            module = importlib.import_module(name)
            top = importlib.import_module(name.split(".")[0])
            versions[name] = str(getattr(module, "__version__", None) or getattr(top, "VERSION_TEXT", None)
                                 or getattr(top, "__version__", "?"))
        except BaseException as exc:  # noqa: BLE001 - ImportError, OSError from missing .so, ...
            if isinstance(exc, KeyboardInterrupt):
                raise
            errors[name] = f"{type(exc).__name__}: {exc}"
    first = next(iter(errors.items()), None)
    return {"ok": not errors, "versions": versions, "errors": errors,
            "error": f"{first[0]}: {first[1]}" if first else ""}


if __name__ == "__main__":
    run(main)
