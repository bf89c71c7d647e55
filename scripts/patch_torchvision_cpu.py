"""Let PyPI's CUDA-linked torchvision import next to CPU torch (test environment only).

Its C++ ops library fails to load without CUDA, so ``torchvision::nms``/``qnms`` are never defined and the
two ``register_fake`` decorators in ``_meta_registrations.py`` raise at import. Registering the fake kernels
only when the op exists keeps every pure-Python part (transforms, datasets, models) usable.
"""

import importlib.util
import sys
from pathlib import Path

GUARD = "_tv_op_exists"
spec = importlib.util.find_spec("torchvision")
path = Path(spec.submodule_search_locations[0]) / "_meta_registrations.py"
text = path.read_text()
if GUARD in text:
    print(f"already patched: {path}")
    sys.exit(0)
helper = (
    f"\n\ndef {GUARD}(qualname):\n"
    "    ns, name = qualname.split('::')\n"
    "    return hasattr(getattr(torch.ops, ns), name) and torch._C._dispatch_has_kernel(qualname)\n\n\n"
    "def _tv_register_fake_if_defined(qualname):\n"
    "    if " + GUARD + "(qualname):\n"
    "        return torch.library.register_fake(qualname)\n"
    "    return lambda fn: fn\n"
)
count = 0
for op in ("torchvision::nms", "torchvision::qnms"):
    old = f'@torch.library.register_fake("{op}")'
    if old in text:
        text = text.replace(old, f'@_tv_register_fake_if_defined("{op}")')
        count += 1
anchor = "import torch._custom_ops\n" if "import torch._custom_ops\n" in text else "import torch\n"
text = text.replace(anchor, anchor + helper, 1)
path.write_text(text)
print(f"guarded {count} register_fake calls in {path}")
