"""Install an import stub for ``eff`` (NVIDIA's encryption library; no build loads on Python 3.11).

TAO imports ``eff.core``/``eff.codec`` at module level for encrypted checkpoints; plain ``.pth`` files never
reach it. The stub raises a clear error if encrypted models are actually used. Test environment only.
"""

import sysconfig
from pathlib import Path

root = Path(sysconfig.get_paths()["purelib"]) / "eff"
files = {
    "__init__.py": '"""Import stub for NVIDIA eff (test environment; encryption unavailable)."""\n',
    "core/__init__.py": (
        "class Archive:  # noqa: D101\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        raise RuntimeError('eff stub: encrypted TAO models are not supported in this environment')\n\n"
        "    @staticmethod\n"
        "    def restore_artifact(*args, **kwargs):\n"
        "        raise RuntimeError('eff stub: encrypted TAO models are not supported in this environment')\n\n"
        "    @staticmethod\n"
        "    def restore_manifest(*args, **kwargs):\n"
        "        raise RuntimeError('eff stub: encrypted TAO models are not supported in this environment')\n\n\n"
        "class Memory:  # noqa: D101\n"
        "    pass\n"
    ),
    "codec/__init__.py": (
        "def get_decrypted_stream(*args, **kwargs):  # noqa: D103\n"
        "    raise RuntimeError('eff stub: encrypted TAO models are not supported in this environment')\n\n\n"
        "def encrypt_stream(*args, **kwargs):  # noqa: D103\n"
        "    raise RuntimeError('eff stub: encrypted TAO models are not supported in this environment')\n"
    ),
    "validator/__init__.py": "",
    "validator/conditions.py": "",
    "callbacks/__init__.py": "",
}
for rel, text in files.items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
print(f"eff stub at {root}")
