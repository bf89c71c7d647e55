"""Import every generated module; modules that need an absent package are retried with stubs.

    python import_modules.py --out result.json [--baseline MODULE ...] [--stub tensorrt,pycuda] [--stub-missing]
                             module [module ...]

``--baseline`` (repeatable): a stock TAO module of the repos the modules belong to (the task's reference
network's entrypoint, its tao-core config), imported first: when TAO's own code does not import here, the
environment is at fault, not the port. Each gets an entry in ``baselines``: ``ok``; ``stubbed`` (it imports
once the packages in ``missing`` are stubbed; ``errors`` says what each one broke); or ``failed`` (``error``;
it does not import even then). Whatever a stubbed one imported is dropped again before the port's modules
are tried, so their results do not depend on it.

Per module: ``ok`` (imported), ``failed`` (a real error), ``stubbed`` (failed only because a stubbed
package is missing, then imported with that package replaced by an inert stub: the module's own code and
its TAO imports are exercised, the package itself is not), ``inconclusive`` (failed again with stubs in a way
a stub can cause). With ``--stub-missing``, any other *third-party* package found missing on the way
(e.g. TAO deploy's own ``pynvml``/``orjson`` in an environment built for tao-pytorch) is stubbed too and
listed in ``stubbed_packages``; a missing ``nvidia_tao_*`` module is never stubbed: that is a real error.
``ok`` in the result is False if any module ``failed``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import sys
import traceback
import types

from _common import run  # pylint: disable=import-error


class _StubMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _StubMeta(name, (_Stub,), {})
        setattr(cls, name, sub)
        return sub

    def __call__(cls, *args, **kwargs):
        return cls

    def __int__(cls):
        return 0

    __index__ = __int__

    def __iter__(cls):
        return iter(())

    def __or__(cls, other):
        return cls

    __ror__ = __lshift__ = __rlshift__ = __and__ = __add__ = __radd__ = __or__


class _Stub(metaclass=_StubMeta):
    pass


class StubModule(types.ModuleType):
    __version__ = "10.0.0"

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        sub = _StubMeta(name, (_Stub,), {})
        setattr(self, name, sub)
        return sub


class StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, tops):
        self.tops = set(tops)

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.tops:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _missing_top(exc):
    name = getattr(exc, "name", None) or ""
    return name.split(".")[0]


def _summary(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    where = f" ({last.filename}:{last.lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _baseline(module, stubbable):
    """Import TAO's own ``module``, stubbing what is missing one package at a time; then forget it all."""
    before = set(sys.modules)
    finder = StubFinder(())
    result = {"module": module, "status": "ok", "missing": []}
    try:
        for _attempt in range(20):
            try:
                importlib.import_module(module)
                break
            except ModuleNotFoundError as exc:
                top = _missing_top(exc)
                if not stubbable(top) or top in finder.tops:
                    result.update(status="failed", error=_summary(exc))
                    break
                result.setdefault("errors", {})[top] = _summary(exc)
                result["status"] = "stubbed"
                result["missing"].append(top)
                finder.tops.add(top)
                if finder not in sys.meta_path:
                    sys.meta_path.insert(0, finder)  # a failed import leaves nothing half-done in sys.modules
            except BaseException as exc:  # noqa: BLE001 - TAO's module-level code may raise anything
                if isinstance(exc, KeyboardInterrupt):
                    raise
                result.update(status="failed", error=_summary(exc))
                break
    finally:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
        if finder.tops:  # no stub may leak into the port's imports: TAO's modules and the stubs go (third-party
            for name in set(sys.modules) - before:  # extension modules stay: numpy cannot be imported twice)
                if name.split(".")[0] in finder.tops or name.startswith("nvidia_tao"):
                    sys.modules.pop(name, None)
    print(f"import {module} (TAO's own, baseline): {result['status']}"
          + (f" (missing: {', '.join(result['missing'])})" if result["missing"] else ""), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--baseline", action="append", default=[])
    parser.add_argument("--stub", default="")
    parser.add_argument("--stub-missing", action="store_true")
    parser.add_argument("modules", nargs="+")
    args = parser.parse_args()
    stub_tops = [s for s in args.stub.split(",") if s]
    generated_tops = {m.split(".")[0] for m in args.modules}

    def stubbable(top):
        return top in stub_tops or (args.stub_missing and top and not top.startswith("nvidia_tao")
                                    and top not in generated_tops)

    baselines = [_baseline(module, stubbable) for module in args.baseline]
    results = {}
    needs_stub = []
    for module in args.modules:
        try:
            importlib.import_module(module)
            results[module] = {"status": "ok"}
        except ModuleNotFoundError as exc:
            if stubbable(_missing_top(exc)):
                if _missing_top(exc) not in stub_tops:
                    stub_tops.append(_missing_top(exc))
                needs_stub.append(module)
                results[module] = {"status": "needs_stub", "missing": _missing_top(exc), "error": _summary(exc)}
            else:
                results[module] = {"status": "failed", "error": _summary(exc)}
        except BaseException as exc:  # noqa: BLE001 - SystemExit from module-level code counts too
            if isinstance(exc, KeyboardInterrupt):
                raise
            results[module] = {"status": "failed", "error": _summary(exc)}
        print(f"import {module}: {results[module]['status']}", flush=True)
    if needs_stub:
        finder = StubFinder(stub_tops)
        sys.meta_path.insert(0, finder)
        for module in needs_stub:
            for _attempt in range(10):
                for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
                    sys.modules.pop(name, None)
                try:
                    importlib.import_module(module)
                    results[module]["status"] = "stubbed"
                    break
                except ModuleNotFoundError as exc:
                    top = _missing_top(exc)
                    if stubbable(top) and top not in finder.tops:
                        finder.tops.add(top)
                        continue
                    results[module]["status"] = "failed" if top.startswith("nvidia_tao") or not stubbable(top) else "inconclusive"
                    results[module]["error"] = _summary(exc)
                    break
                except (SyntaxError, NameError, ImportError) as exc:
                    text = _summary(exc)
                    results[module]["status"] = "inconclusive" if any(t in text for t in finder.tops) else "failed"
                    results[module]["error"] = text
                    break
                except BaseException as exc:  # noqa: BLE001
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    results[module]["status"] = "inconclusive"
                    results[module]["error"] = _summary(exc)
                    break
            print(f"import {module} (with {', '.join(sorted(finder.tops))} stubbed): {results[module]['status']}",
                  flush=True)
    counts = {}
    for item in results.values():
        counts[item["status"]] = counts.get(item["status"], 0) + 1
    stubbed_packages = sorted(getattr(finder, "tops", ())) if needs_stub else []
    return {"ok": counts.get("failed", 0) == 0, "modules": results, "counts": counts,
            "stubbed_packages": stubbed_packages, "baselines": baselines}


if __name__ == "__main__":
    run(main)
