#!/usr/bin/env python3
"""Golden renders: regenerate every example port and diff it against the checked-in tree.

    scripts/check_blueprints.py --check     # exit 1 and print the diff when a render changed
    scripts/check_blueprints.py --fix       # rewrite tests/golden/ from the current blueprints

transformers' ``check_modular_conversion`` habit: a blueprint edit is reviewed as the Python it generates. Each
``examples/<model>/`` folder with an ``example.yml`` (the port's name and options) is planned offline exactly as
``tao-scaffold generate --model examples/<model>`` would plan it, rendered with Copier and formatted with black,
and compared file by file with ``tests/golden/<model>/``. Only the answers file's ``_commit`` (the blueprint checkout's
hash) is masked: everything else must match byte for byte.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden"
_VOLATILE = re.compile(r"^(_commit): .*$", re.MULTILINE)


def example_dirs() -> list[Path]:
    return sorted(p.parent for p in EXAMPLES.glob("*/example.yml"))


def render_example(example: Path, dest: Path) -> None:
    """Plan and render one example into ``dest`` (a port records its model folder's name: no machine path)."""
    import yaml

    from scaffolder.planner import plan_port
    from scaffolder.render import format_python, render
    from scaffolder.hf_inspect import inspect_model

    options = yaml.safe_load((example / "example.yml").read_text(encoding="utf-8")) or {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        info = inspect_model(str(example.relative_to(ROOT)), offline=True, include_weights_schema=False)
        plan = plan_port(info, options["name"], task=options.get("task"), num_classes=options.get("num_classes"))
    finally:
        os.chdir(cwd)
    render(plan, dest)
    format_python(dest)
    for answers in dest.rglob(".tao-scaffold-answers.yml"):
        answers.write_text(_VOLATILE.sub(r"\1: <masked>", answers.read_text(encoding="utf-8")), encoding="utf-8")


def tree_files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """Unified diffs (expected -> actual) for every file that differs, is missing or is new."""
    want, got = tree_files(expected) if expected.is_dir() else {}, tree_files(actual)
    out: list[str] = []
    for rel in sorted(set(want) | set(got)):
        a = want[rel].read_text(encoding="utf-8").splitlines(keepends=True) if rel in want else []
        b = got[rel].read_text(encoding="utf-8").splitlines(keepends=True) if rel in got else []
        if a != b:
            out.extend(difflib.unified_diff(a, b, f"golden/{rel}", f"render/{rel}"))
            if out and not out[-1].endswith("\n"):
                out[-1] += "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="diff renders against tests/golden (exit 1 on a diff)")
    mode.add_argument("--fix", action="store_true", help="rewrite tests/golden from the current blueprints")
    parser.add_argument("examples", nargs="*", help="example folder names (default: every examples/*/example.yml)")
    args = parser.parse_args(argv)
    selected = [EXAMPLES / n for n in args.examples] if args.examples else example_dirs()
    failed = []
    for example in selected:
        with tempfile.TemporaryDirectory(prefix="tao-scaffold-golden-") as tmp:
            rendered = Path(tmp) / "render"
            render_example(example, rendered)
            golden = GOLDEN / example.name
            if args.fix:
                shutil.rmtree(golden, ignore_errors=True)
                shutil.copytree(rendered, golden)
                print(f"fixed    {golden.relative_to(ROOT)} ({len(tree_files(golden))} files)")
                continue
            diff = diff_trees(golden, rendered)
            if diff:
                failed.append(example.name)
                changed = sorted({line[len('+++ render/'):].strip() for line in diff if line.startswith("+++ ")})
                print(f"DIFFERS  {example.name}: {', '.join(changed)}")
                sys.stdout.writelines(diff)
            else:
                print(f"ok       {example.name} ({len(tree_files(golden))} files)")
    if failed:
        print(f"\n{len(failed)} golden render(s) differ: {', '.join(failed)} -- review the diff above; "
              "if it is intended, run scripts/check_blueprints.py --fix and commit tests/golden/")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
