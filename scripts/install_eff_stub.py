"""Install an import stub for ``eff`` (NVIDIA's encryption library; no build loads on Python 3.11).

TAO imports ``eff.*`` at module level for encrypted checkpoints; plain ``.pth`` files never reach it.
Every name resolves to a stand-in that raises a clear error if encryption is actually used (class bodies
that subclass a stand-in still import). Test environment only -- never part of generated code.
"""

import sysconfig
from pathlib import Path

MODULES = [
    "eff", "eff.core", "eff.core.archive", "eff.core.codec", "eff.codec", "eff.callbacks", "eff.utils",
    "eff.utils.object_class", "eff.validator", "eff.validator.conditions", "eff.validator.validator",
    "eff_tao_encryption", "eff_tao_encryption.tao_codec",
]
STUB = '''"""Import stub for NVIDIA eff (test environment: encryption unavailable on this Python)."""


def _unavailable(*args, **kwargs):
    raise RuntimeError("eff stub: encrypted TAO models are not supported in this environment")


class _StubMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _unavailable


class _Stub(metaclass=_StubMeta):
    """Stands in for any eff name: constructible (TAO builds some at import), unusable."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _unavailable


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _StubMeta(name, (_Stub,), {})
'''
root = Path(sysconfig.get_paths()["purelib"])
for module in MODULES:
    path = root.joinpath(*module.split(".")) / "__init__.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STUB)
    for stale in path.parent.glob("*.py"):
        if stale.name != "__init__.py":
            stale.unlink()
print(f"eff stub: {len(MODULES)} modules under {root}")
