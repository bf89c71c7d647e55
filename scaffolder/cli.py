"""`tao-scaffold`: port a HuggingFace vision model into a TAO workspace, then verify it."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

from scaffolder import __version__
from scaffolder.errors import ScaffoldError, printable
from scaffolder.signals import Terminated, terminate_like_sigint
from scaffolder.tasks import task_names

EPILOG = """\
typical session:
  tao-scaffold workspace init ws --from-pypi 7.3.0        # or clone tao-core/tao-pytorch/tao-deploy into ws/
  tao-scaffold inspect google/vit-base-patch16-224 --name vit_imagenet100 --out port.yml
  tao-scaffold generate --plan port.yml --workspace ws     # or: --model ... --name ...
  tao-scaffold verify --workspace ws --name vit_imagenet100 --runner local --device cpu
"""


class Progress:
    """One line per step on stderr, with the time since the command started."""

    def __init__(self, quiet: bool = False):
        self.start = time.monotonic()
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:  # messages carry model paths and names: no raw terminal controls
            print(f"[{time.monotonic() - self.start:6.1f}s] {printable(message)}", file=sys.stderr, flush=True)


def default_name(model: str) -> str:
    """A snake_case port name from a hub id or folder: google/vit-base-patch16-224 -> vit_base_patch16_224."""
    base = Path(model.rstrip("/")).name.lower()
    name = re.sub(r"[^a-z0-9]+", "_", base).strip("_")
    return name if name[:1].isalpha() else f"hf_{name}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _class_count(text: str) -> int:
    from scaffolder.plan import MAX_CLASSES

    value = _positive_int(text)
    if value > MAX_CLASSES:
        raise argparse.ArgumentTypeError(f"at most {MAX_CLASSES} classes, not {text[:30]}")
    return value


# -- commands ----------------------------------------------------------------------------------------

def _workspace_facts(args) -> dict[str, str]:
    """The plan's workspace-dependent fields (config layout, TAO version, header copyright line) from
    ``--workspace``, if given; ``--copyright`` overrides the workspace's line."""
    facts = {}
    if args.workspace:
        from scaffolder.workspace import Workspace

        ws = Workspace.open(Path(args.workspace))
        facts = {"config_layout": ws.config_layout, "tao_version": ws.tao_version or "7.3.0"}
        facts.update({"copyright": ws.copyright} if ws.copyright else {})
    if args.copyright is not None:
        facts["copyright"] = args.copyright
    return facts


def cmd_inspect(args, progress: Progress) -> int:
    from scaffolder.hf_inspect import inspect_model
    from scaffolder.planner import plan_port

    if args.out and not os.access(Path(args.out).absolute().parent, os.W_OK):  # before the slow part
        raise ScaffoldError(f"cannot write the plan to {args.out}: {Path(args.out).absolute().parent} is not a "
                            "writable folder", "pass an --out path in a writable folder")
    facts = _workspace_facts(args)
    progress(f"inspect: {args.model}")
    info = inspect_model(args.model, revision=args.revision, cache_dir=args.cache_dir, offline=args.offline or None)
    print("\n".join(map(printable, info.summary_lines())))
    plan = plan_port(info, args.name or default_name(args.model), task=args.task, num_classes=args.num_classes,
                     weights=not args.no_weights, progress=progress, **facts)
    print(f"  TAO backbone:   {plan.backbone} ({plan.backbone_strategy}: {plan.strategy_reason})")
    print(f"  features:       {plan.num_features}")
    for key, value in plan.task_params.items():
        print(f"  {plan.task + '.' + key + ':':15} {value}")
    print(f"  task / classes: {plan.task} / {plan.num_classes}")
    for note in plan.export_notes:
        print(f"  export note:    {note}")
    for note in plan.mapping_notes:
        print(f"  weights:        {note}")
    if args.out:
        try:
            plan.write(Path(args.out))
        except OSError as exc:
            raise ScaffoldError(f"cannot write the plan to {args.out}: {exc.strerror or exc}",
                                "pass an --out path in a writable folder") from exc
        print(f"plan written to {args.out}")
    return 0


def _plan_for(args, progress: Progress):
    from scaffolder.plan import PortPlan

    if args.plan:
        plan = PortPlan.read(Path(args.plan))
        if args.name and args.name != plan.name:
            plan = PortPlan.from_answers({**plan.answers(), "name": args.name, "class_name": ""})
        # the version the port is written into is the workspace's; the reviewed copyright line stays unless
        # --copyright is given (generate refuses a layout mismatch itself)
        facts = _workspace_facts(args)
        recorded = {"tao_version": facts["tao_version"],
                    **({"copyright": args.copyright} if args.copyright is not None else {})}
        if any(getattr(plan, key) != value for key, value in recorded.items()):
            plan = PortPlan.from_answers({**plan.answers(), **recorded})
        # The plan records only the model's hub id or folder name (no machine paths); --model beside --plan says
        # where the folder is on this machine, so that verify's hf_parity finds it without being told again.
        folder = Path(args.model) if args.model and Path(args.model).is_dir() else None
        return plan, folder
    from scaffolder.hf_inspect import inspect_model, read_safetensors_schema
    from scaffolder.naming import validate_name
    from scaffolder.planner import plan_port

    validate_name(args.name)  # fail before any model I/O
    facts = _workspace_facts(args)
    progress(f"inspect: {args.model}")
    info = inspect_model(args.model, revision=args.revision, cache_dir=args.cache_dir,
                         offline=args.offline or None, include_weights_schema=False)
    # The plan needs no weight schema (building it on the meta device is slow), but a corrupt weights file
    # must still be refused here, as `inspect` does: a safetensors header is cheap to read (no tensor data).
    for weights in sorted(info.local_dir.glob("*.safetensors")):
        read_safetensors_schema(weights)
    progress(f"plan: {info.model_type} -> {args.task or 'auto-routed'} port {args.name}")
    plan = plan_port(info, args.name, task=args.task, num_classes=args.num_classes, weights=not args.no_weights,
                     progress=progress, **facts)
    return plan, info.local_dir if info.local else None


def cmd_generate(args, progress: Progress) -> int:
    from scaffolder.generate import generate

    if not args.plan and not (args.model and args.name):
        raise ScaffoldError("generate needs --model and --name, or --plan port.yml")
    plan, model_folder = _plan_for(args, progress)
    result = generate(plan, Path(args.workspace), dry_run=args.dry_run, allow_dirty=args.allow_dirty,
                      template=Path(args.template) if args.template else None, model_folder=model_folder,
                      progress=progress)
    verb = "would write" if result.dry_run else "wrote"
    for change in result.changes:
        if change.status != "unchanged" or args.dry_run:
            print(f"  {change.status:9} {change.relpath}")
    for edit in result.registry_edits:
        print(f"  registry  {edit}")
    print(f"{plan.name}: {verb} {len(result.written)} files "
          f"({len(result.changes) - len(result.written)} unchanged), {len(result.registry_edits)} registry edits")
    for note in plan.export_notes:
        print(f"note: {note}")
    for note in plan.mapping_notes:
        print(f"weights: {note}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    return 0


def cmd_update(args, progress: Progress) -> int:
    from scaffolder.update import update

    result = update(args.name, Path(args.workspace), template=Path(args.template) if args.template else None,
                    dry_run=args.dry_run, progress=progress)
    print(result.summary())
    return 1 if result.conflicts else 0


def cmd_workspace_init(args, progress: Progress) -> int:
    from scaffolder.workspace_init import init_from_pypi

    workspace = init_from_pypi(Path(args.dir), args.from_pypi,
                               cache=Path(args.wheel_cache) if args.wheel_cache else None, progress=progress)
    print(f"TAO {args.from_pypi} workspace ready at {workspace.root}")
    return 0


def cmd_doctor(args, progress: Progress) -> int:
    from scaffolder.doctor import format_checks, run_checks

    checks = run_checks(Path(args.workspace) if args.workspace else None)
    print(format_checks(checks))
    return 0 if all(c.ok or not c.required for c in checks) else 1


# -- parser ------------------------------------------------------------------------------------------

def _add_model_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--copyright", metavar="LINE", help="copyright line of the generated files' header, without "
                        "'# ' (default: the newest NVIDIA SPDX-FileCopyrightText line of the workspace's files; "
                        "'' for none)")
    parser.add_argument("--no-weights", action="store_true",
                        help="skip deriving the HF->TAO weight mapping (no torch needed; converter left empty)")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit) of a hub model")
    parser.add_argument("--cache-dir", help="huggingface_hub cache folder (default: HF_HOME's)")
    parser.add_argument("--offline", action="store_true", help="never contact the hub (like HF_HUB_OFFLINE=1)")


class _ArgumentParser(argparse.ArgumentParser):
    """argparse with tao-scaffold's error format: ``tao-scaffold: error: ...``, one line on stderr, exit 2.

    Sub-command parsers inherit it (``add_subparsers`` creates parsers of the parent's class).
    """

    def error(self, message: str):
        message = " ".join(message.split())
        self.exit(2, f"tao-scaffold: error: {message} -- see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="tao-scaffold", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"tao-scaffold {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("inspect", help="read a HF model and write its port plan (port.yml)",
                       description="Summarise a HF model (hub id or local folder with config.json) and plan its port.")
    p.add_argument("model", metavar="MODEL", help="hub id (google/vit-base-patch16-224) or local folder")
    p.add_argument("--task", choices=task_names(), help="TAO task blueprint (default: from the model's architecture "
                   "or pipeline tag)")
    p.add_argument("--name", help="port name, snake_case (default: from MODEL)")
    p.add_argument("--workspace", metavar="DIR", help="plan for this workspace's layout and TAO version "
                   "(default: a TAO 7.3 workspace)")
    p.add_argument("--num-classes", type=_class_count, help="classes of the TAO model (default: the HF label count)")
    p.add_argument("--out", metavar="port.yml", help="write the plan here (a Copier data file)")
    _add_model_source(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("generate", help="write a port into a TAO workspace",
                       description="inspect + plan + render + patch + format, staged: all files or none.")
    p.add_argument("--model", help="hub id or local folder")
    p.add_argument("--plan", metavar="port.yml",
                   help="use a reviewed plan instead of inspecting --model (with --plan, a local --model folder is "
                        "only recorded for verify's hf_parity)")
    p.add_argument("--name", help="port name, snake_case (e.g. vit_imagenet100)")
    p.add_argument("--workspace", required=True, metavar="DIR", help="folder with tao-core, tao-pytorch, tao-deploy")
    p.add_argument("--task", choices=task_names(), help="TAO task blueprint (default: from the model's architecture "
                   "or pipeline tag)")
    p.add_argument("--num-classes", type=_class_count, help="classes of the TAO model (default: the HF label count)")
    p.add_argument("--dry-run", action="store_true", help="list the files and registry edits; write nothing")
    p.add_argument("--allow-dirty", action="store_true", help="write even if a target repo has uncommitted changes")
    p.add_argument("--template", metavar="PATH", help="tao-scaffold checkout whose blueprints to use (default: this one)")
    _add_model_source(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("update", help="regenerate a port after the blueprints changed, keeping your edits",
                       description="Copier's update algorithm over the port's files in all three repos; "
                                   "conflicts are reported, never dropped.")
    p.add_argument("--name", required=True, help="port name")
    p.add_argument("--workspace", required=True, metavar="DIR")
    p.add_argument("--template", metavar="PATH", help="tao-scaffold checkout to update from (default: this one)")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.set_defaults(func=cmd_update)

    p = sub.add_parser("workspace", help="TAO workspace helpers")
    wsub = p.add_subparsers(dest="workspace_command", metavar="ACTION", required=True)
    w = wsub.add_parser("init", help="materialise tao-core/tao-pytorch/tao-deploy git repos from PyPI wheels",
                        description="For users without the git clones, and for tests: each repo gets one commit.")
    w.add_argument("dir", metavar="DIR", help="new workspace folder (must not exist or be empty)")
    w.add_argument("--from-pypi", required=True, metavar="VERSION", help="TAO release, e.g. 7.3.0")
    w.add_argument("--wheel-cache", metavar="DIR", help="wheel cache (default ~/.cache/tao-scaffold/wheels)")
    w.set_defaults(func=cmd_workspace_init)

    p = sub.add_parser("doctor", help="check Python, git, docker, GPU, TensorRT and the workspace")
    p.add_argument("--workspace", metavar="DIR")
    p.set_defaults(func=cmd_doctor)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Commands that live with their own feature package (verify, convert-weights)."""
    out = []
    try:
        from scaffolder.verify.cli import register as register_verify
        out.append(register_verify)
    except ImportError:
        pass
    try:
        from scaffolder.convert.cli import register as register_convert
        out.append(register_convert)
    except ImportError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    progress = Progress(quiet=args.quiet)
    try:
        with terminate_like_sigint():  # SIGTERM/SIGHUP unwind (and roll back) like Ctrl-C
            return args.func(args, progress)
    except ScaffoldError as exc:
        print(f"tao-scaffold: error: {printable(exc.one_line())}", file=sys.stderr)
        return exc.exit_code
    except Terminated as exc:
        print(f"tao-scaffold: terminated ({exc})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("tao-scaffold: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # pylint: disable=broad-exception-caught  # the top-level guard: one line, always
        if args.debug:
            raise
        detail = printable(" ".join(str(exc).split())[:300]) or "no message"
        print(f"tao-scaffold: error: unexpected {type(exc).__name__}: {detail} -- run again with "
              f"`tao-scaffold --debug {args.command} ...` for the traceback, and report it", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
