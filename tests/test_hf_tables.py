"""The transformers table snapshot inspect reads must equal what the pinned transformers says."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_hf_tables_snapshot_is_current():
    proc = subprocess.run([sys.executable, "scripts/regen_hf_tables.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_fast_inspect_does_not_import_torch(tmp_path):
    from tests.model_factory import make_model_dir

    model = make_model_dir(tmp_path / "swin", "swin", full_size=True, weights=False)
    code = (
        "import sys\nfrom scaffolder.hf_inspect import inspect_model\n"
        f"info = inspect_model({str(model)!r}, include_weights_schema=False)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n"
        "print(info.pipeline_tag, info.hidden_size)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["image-classification", "768"]
