"""Regenerate scaffolder/data/hf_tables.json from the installed transformers.

Importing transformers costs seconds (it imports torch), so inspect reads its auto-mapping name tables from
this snapshot instead. `tests/test_hf_tables.py` regenerates and diffs (like transformers'
check_modular_conversion): the snapshot must equal what the pinned transformers says.

    .venv/bin/python scripts/regen_hf_tables.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "scaffolder" / "data" / "hf_tables.json"


def build() -> str:
    import transformers
    from transformers.models.auto import modeling_auto
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    from scaffolder.hf_inspect import _OTHER_TABLES, _VISION_TABLES

    tables = []
    for group, is_vision in ((_VISION_TABLES, True), (_OTHER_TABLES, False)):
        for table_name, tag in group:
            table = getattr(modeling_auto, table_name, {})
            archs = {n for names in table.values() for n in ((names,) if isinstance(names, str) else names)}
            tables.append({"table": table_name, "tag": tag, "vision": is_vision,
                           "model_types": sorted(table), "architectures": sorted(archs)})
    data = {"transformers_version": transformers.__version__, "config_model_types": sorted(CONFIG_MAPPING_NAMES),
            "tables": tables}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    text = build()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text() == text else "hf_tables.json is stale: run scripts/regen_hf_tables.py")
    OUT.write_text(text)
    print(f"wrote {OUT}")
