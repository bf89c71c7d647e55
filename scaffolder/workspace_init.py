"""``workspace init --from-pypi``: build a TAO workspace from the PyPI wheels instead of git clones.

For TAO 7.x each of ``nvidia-tao-core``, ``nvidia-tao-pytorch`` and ``nvidia-tao-deploy`` is fetched
with pip (or taken from the wheel cache), its package files are unpacked without the compiled CUDA
extensions (``*.so``), and the result becomes a git repository ``tao-core``/``tao-pytorch``/``tao-deploy``
with exactly one commit. Each repository also gets a generated ``setup.py`` whose ``console_scripts``
list is exactly the wheel's entry points, written in the same shape as NVIDIA's own setup.py
(``setuptools.setup(..., entry_points={'console_scripts': ['name=module:func', ...]})``) so the same
patchers work on real clones and on these, a ``README.md`` recording the wheel and its sha256, and a
``.gitignore`` for build/bytecode litter. Author, committer, dates (the wheel's build time) and git
configuration are fixed, so one version always gives the same commit hashes. The workspace is built in
a temporary folder beside ``dest`` and renamed into place at the end; on any failure nothing is left.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from scaffolder import tao_wheels
from scaffolder.errors import WorkspaceError
from scaffolder.workspace import REPO_NAMES, Workspace, parse_console_scripts

SUPPORTED_MAJOR = 7
COMMIT_AUTHOR = ("tao-scaffold", "tao-scaffold@noreply.invalid")
_FALLBACK_DATE = "2000-01-01T00:00:00+00:00"
_VERSION = re.compile(r"^(\d+)(\.\d+)*([.\-+]?[A-Za-z0-9.+\-]*)?$")
_GITIGNORE = "__pycache__/\n*.py[cod]\n*.egg-info/\n/build/\n/dist/\n"


def init_from_pypi(
    dest: Path | str,
    version: str,
    *,
    cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Workspace:
    """Materialise ``dest/{tao-core,tao-pytorch,tao-deploy}`` from the TAO ``version`` wheels.

    ``dest`` must not exist or be an empty directory. ``cache`` is the wheel cache (default
    ``~/.cache/tao-scaffold/wheels``); ``progress`` receives one-line status messages. Raises
    ``WorkspaceError`` (and leaves nothing behind) on any failure.
    """
    say = progress or (lambda message: None)
    dest = Path(dest).expanduser().absolute()
    _check_version(version)
    _check_dest(dest)
    if shutil.which("git") is None:
        raise WorkspaceError("git is not installed", "install git (apt-get install git) and retry")

    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]  # innermost first
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    except OSError as exc:
        _remove_empty(created)
        raise WorkspaceError(
            f"cannot create {dest}: {exc.strerror or exc}", "pick a writable location"
        ) from None
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; dest should look like a mkdir
        wheels = {repo: _wheel(repo, version, cache, say) for repo in REPO_NAMES}
        for repo, wheel in wheels.items():
            _materialise(staging / repo, wheel, version, say)
        say(f"moving the workspace into place: {dest}")
        try:
            os.rename(staging, dest)  # atomic; replaces dest only if it is an empty directory
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create {dest}: {exc.strerror or exc}", "pick an empty or new directory"
            ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise
    say(f"workspace ready: {dest} (TAO {version}, one commit per repository)")
    return Workspace.open(dest)


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_version(version: str) -> None:
    match = _VERSION.match(version or "")
    if not match:
        raise WorkspaceError(f"{version!r} is not a TAO version", "pass a release such as 7.3.0")
    if int(match[1]) != SUPPORTED_MAJOR:
        raise WorkspaceError(
            f"--from-pypi supports TAO {SUPPORTED_MAJOR}.x only, not {version}",
            "for TAO 6.x clone tao-core, tao-pytorch and tao-deploy at that release into one folder",
        )


def _check_dest(dest: Path) -> None:
    if dest.is_symlink():
        raise WorkspaceError(f"{dest} is a symbolic link", "pass the real directory or a new path")
    if dest.exists():
        if not dest.is_dir():
            raise WorkspaceError(f"{dest} exists and is not a directory", "pick a new directory")
        if any(dest.iterdir()):
            raise WorkspaceError(
                f"{dest} exists and is not empty", "pick a new directory or remove this one first"
            )


def _wheel(repo: str, version: str, cache: Path | None, say: Callable[[str], None]) -> Path:
    distribution = tao_wheels.TAO_DISTRIBUTIONS[repo]
    cached = tao_wheels.find_wheel(cache or tao_wheels.default_cache(), distribution, version)
    if cached:
        say(f"using cached wheel {cached.name}")
        return cached
    say(f"downloading {distribution}=={version} from PyPI")
    try:
        return tao_wheels.download_wheel(distribution, version, cache)
    except (RuntimeError, OSError) as exc:
        raise WorkspaceError(str(exc), "check the version (e.g. 7.3.0) and that PyPI is reachable") from None


def _materialise(repo_dir: Path, wheel: Path, version: str, say: Callable[[str], None]) -> None:
    """Create ``repo_dir`` as a git repository whose single commit holds the wheel's pure-Python files.

    The files are streamed from the wheel straight into ``git fast-import`` (one pack file instead of
    thousands of loose objects, which keeps copies of the workspace cheap), then checked out.
    """
    repo = repo_dir.name
    try:
        members = tao_wheels.wheel_members(wheel)
        skipped = tao_wheels.skipped_members(wheel)
        metadata = tao_wheels.wheel_metadata(wheel)
        scripts = tao_wheels.console_scripts(wheel)
        sha256 = tao_wheels.wheel_sha256(wheel)
        build_date = _wheel_date(wheel)
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as exc:
        raise WorkspaceError(
            f"{wheel} is not a readable wheel: {exc}", f"delete it from {wheel.parent} and retry"
        ) from None
    if metadata.get("Version") not in (None, version):
        raise WorkspaceError(
            f"{wheel.name} says it is version {metadata['Version']}, not {version}",
            f"delete it from {wheel.parent} and retry",
        )
    top_level = sorted({m.filename.split("/", 1)[0] for m in members if "/" in m.filename})
    distribution = metadata.get("Name") or tao_wheels.TAO_DISTRIBUTIONS[repo]
    setup_py = render_setup_py(distribution, version, metadata, top_level, scripts, wheel.name, sha256)
    # The patchers read the list back the same way; make sure it round-trips.
    if parse_console_scripts(setup_py, f"{repo}/setup.py") != scripts:
        raise WorkspaceError(f"generated setup.py for {repo} loses console_scripts", "report this bug")
    generated = {
        "setup.py": setup_py,
        "README.md": render_readme(
            repo, distribution, version, wheel.name, sha256, len(members), skipped, scripts
        ),
        ".gitignore": _GITIGNORE,
    }
    extra = f" (skipping {len(skipped)} compiled .so files)" if skipped else ""
    say(f"{repo}: extracting and committing {len(members)} files from {wheel.name}{extra}")
    message = (
        f"{distribution} {version} from the PyPI wheel\n\nwheel: {wheel.name}\nsha256: {sha256}\n"
        f"files: {len(members)} package files (compiled extensions skipped: {len(skipped)})\n"
    )
    repo_dir.mkdir()
    _git(repo_dir, build_date, "init", "-q", "--template=", "-b", "main")
    try:
        _fast_import(
            repo_dir,
            build_date,
            lambda out: _stream_commit(out, wheel, members, generated, message, build_date),
        )
    except (zipfile.BadZipFile, zlib.error, ValueError, EOFError, OSError) as exc:
        raise WorkspaceError(
            f"{wheel} is not a readable wheel: {exc}", f"delete it from {wheel.parent} and retry"
        ) from None
    say(f"{repo}: checking out the commit ({len(members) + len(generated)} files)")
    _git(repo_dir, build_date, "checkout", "-q", "-f", "main")


def _fast_import(repo_dir: Path, date: str, write: Callable) -> None:
    """Run ``git fast-import`` in ``repo_dir`` and feed it with ``write(stdin)``; errors from ``write`` propagate."""
    with subprocess.Popen(
        ["git", *_GIT_CONFIG, "fast-import", "--quiet", "--done"],
        cwd=repo_dir,
        env=_git_env(date),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        try:
            write(proc.stdin)
        except BrokenPipeError:
            pass  # git stopped reading: its exit status and stderr say why
        except BaseException:
            proc.kill()
            raise
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass
        stderr = proc.stderr.read()
        code = proc.wait()
    if code:
        raise WorkspaceError(
            f"git fast-import failed in {repo_dir.name}: {_last(stderr)}", "check that git works"
        )


def _stream_commit(out, wheel: Path, members, generated: dict[str, str], message: str, date: str) -> None:
    """Write one fast-import commit on refs/heads/main with every file inline, in sorted order."""
    name, email = COMMIT_AUTHOR
    ident = f"{name} <{email}> {int(_dt.datetime.fromisoformat(date).timestamp())} +0000".encode()
    msg = message.encode()
    out.write(
        b"commit refs/heads/main\nauthor %s\ncommitter %s\ndata %d\n%s\n" % (ident, ident, len(msg), msg)
    )

    def put(path: str, mode: str, data: bytes) -> None:
        out.write(f"M {mode} inline {_quote_path(path)}\n".encode() + b"data %d\n" % len(data) + data + b"\n")

    entries = {path: (None, text.encode()) for path, text in generated.items()}
    entries.update({info.filename: (info, None) for info in members})
    with zipfile.ZipFile(wheel) as zf:
        for path in sorted(entries):
            info, data = entries[path]
            if info is not None:
                tao_wheels.safe_member_parts(wheel, info)
                data = zf.read(info)
            put(path, "100755" if info is not None and tao_wheels.is_executable(info) else "100644", data)
    out.write(b"done\n")


def _quote_path(path: str) -> str:
    """fast-import path syntax: C-style quoted when it has a quote, newline, backslash or leading space."""
    if any(c in path for c in '"\\\n') or path.startswith(" "):
        return '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return path


def render_setup_py(
    distribution: str,
    version: str,
    metadata: dict[str, str],
    packages: list[str],
    scripts: list[str],
    wheel_name: str,
    sha256: str,
) -> str:
    """A setup.py shaped like NVIDIA's (``setuptools.setup(... entry_points={'console_scripts': [...]})``)."""
    q = repr  # single quotes, like upstream, unless the text contains one
    lines = [
        "# Generated by tao-scaffold from the PyPI wheel, not NVIDIA's original setup.py:",
        f"#   {wheel_name}",
        f"#   sha256 {sha256}",
        "# The console_scripts list is exactly the wheel's entry points, in the same shape as upstream.",
        "",
        f'"""Setup script to build the {distribution} package (materialised from the {version} wheel)."""',
        "",
        "import setuptools",
        "",
        "PACKAGE_LIST = [",
        *[f'    "{p}",' for p in packages],
        "]",
        "",
        "",
        "setuptools_packages = []",
        "for package_name in PACKAGE_LIST:",
        "    setuptools_packages.extend(",
        '        setuptools.find_namespace_packages(include=[package_name, package_name + ".*"])',
        "    )",
        "",
        "setuptools.setup(",
        f"    name={q(distribution)},",
        f"    version={q(version)},",
        f"    description={q(metadata.get('Summary', ''))},",
        f"    author={q(metadata.get('Author', 'NVIDIA Corporation'))},",
        f"    license={q(metadata.get('License', ''))},",
        "    packages=setuptools_packages,",
        "    package_data={",
        "        '': ['*.pyc', \"*.yaml\", \"*.json\", \"*.so\", '*.pdf']",
        "    },",
        "    include_package_data=True,",
        *(
            [f"    python_requires={q(metadata['Requires-Python'])},"]
            if metadata.get("Requires-Python")
            else []
        ),
        "    zip_safe=False,",
        "    entry_points={",
        "        'console_scripts': [",
        *[f"            {q(entry)}," for entry in scripts],
        "        ]",
        "    }",
        ")",
        "",
    ]
    return "\n".join(lines)


def render_readme(
    repo: str,
    distribution: str,
    version: str,
    wheel_name: str,
    sha256: str,
    n_files: int,
    skipped: list[str],
    scripts: list[str],
) -> str:
    """README.md saying where the repository came from; its marker line is read by ``Workspace.tao_version``."""
    skipped_line = (
        f"{len(skipped)} compiled extension modules (`*.so`, CUDA ops) were left out; code that needs them "
        "only runs in the TAO containers.\n"
        if skipped
        else "The wheel has no compiled extension modules.\n"
    )
    return (
        f"# {repo}: {distribution} {version} (materialised from the PyPI wheel)\n"
        "\n"
        f"<!-- tao-scaffold: materialised from wheel distribution={distribution} version={version} "
        f"sha256={sha256} -->\n"
        "\n"
        f"This repository was created by `tao-scaffold workspace init --from-pypi {version}` from the PyPI wheel; "
        "it is not a clone of NVIDIA's git repository.\n"
        "\n"
        "| | |\n"
        "|---|---|\n"
        f"| distribution | `{distribution}` |\n"
        f"| version | {version} |\n"
        f"| wheel | `{wheel_name}` |\n"
        f"| sha256 | `{sha256}` |\n"
        f"| package files | {n_files} |\n"
        f"| console scripts | {len(scripts)} |\n"
        "\n"
        f"{skipped_line}"
        f"`setup.py` is generated: its `console_scripts` list is exactly the wheel's entry points. NVIDIA's "
        "build machinery, tests, docs and most spec YAMLs are not in the wheel and are absent here.\n"
    )


def _wheel_date(wheel: Path) -> str:
    """The newest member timestamp of the wheel (its build time, taken as UTC) in ISO 8601."""
    with zipfile.ZipFile(wheel) as zf:
        newest = max((info.date_time for info in zf.infolist()), default=None)
    if not newest or newest[0] <= 1980:
        return _FALLBACK_DATE
    return _dt.datetime(*newest, tzinfo=_dt.timezone.utc).isoformat()


def _git_env(date: str) -> dict[str, str]:
    """Environment for reproducible commits: no user/system config, no GIT_* leaking in, fixed identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    name, email = COMMIT_AUTHOR
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_SYSTEM=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=name,
        GIT_AUTHOR_EMAIL=email,
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_NAME=name,
        GIT_COMMITTER_EMAIL=email,
        GIT_COMMITTER_DATE=date,
        LC_ALL="C",
    )
    return env


_GIT_CONFIG = [
    "-c", "core.autocrlf=false", "-c", "core.safecrlf=false", "-c", "gc.auto=0", "-c", "maintenance.auto=false",
    "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null",
]  # fmt: skip


def _git(repo_dir: Path, date: str, *args: str) -> None:
    proc = subprocess.run(
        ["git", *_GIT_CONFIG, *args],
        cwd=repo_dir,
        env=_git_env(date),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise WorkspaceError(
            f"git {args[0]} failed in {repo_dir.name}: {_last(proc.stderr)}", "check that git works"
        )


def _last(stderr: str | bytes) -> str:
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    return (text.strip().splitlines() or ["no output"])[-1]
