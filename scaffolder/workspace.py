"""The TAO workspace: one folder holding the git clones ``tao-core``, ``tao-pytorch`` and ``tao-deploy``.

``Workspace.open(root)`` checks that the three repositories are there and are git repositories (the
folder itself is not one), then answers the questions the rest of tao-scaffold asks before it writes
anything: which config layout the release uses ("vendored": 7.x keeps a config copy in each of the
three packages; "core": 6.x keeps them only in tao-core), which TAO version it is (best effort),
whether a repository has uncommitted changes or cannot be written, which network names are already
taken (package folders, config folders and ``console_scripts`` entries) and which backbones
``BACKBONE_REGISTRY`` registers. Everything is read from the file system and git, with ``ast`` for
Python sources, so nothing from TAO (or torch) is imported and nothing in the workspace is modified.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from scaffolder.errors import WorkspaceError
from scaffolder.layout import BACKBONE_V2, MODEL_FOLDERS_FILE, PACKAGES, REPOS

REPO_NAMES = REPOS
CLONE_URLS = {name: f"https://github.com/NVIDIA-TAO/{name}.git" for name in REPO_NAMES}
INIT_HINT = "tao-scaffold workspace init DIR --from-pypi 7.3.0"
# Folders of nvidia_tao_pytorch that hold one sub-folder per network.
PYTORCH_DOMAINS = ("cv", "multimodal", "ssl", "sdg", "pointcloud")
DEPLOY_DOMAINS = ("cv", "multimodal")
# Marker line written into README.md by workspace_init (parsed back by ``tao_version``).
WHEEL_MARKER = re.compile(
    r"<!-- tao-scaffold: materialised from wheel distribution=(?P<dist>\S+) version=(?P<version>\S+) "
    r"sha256=(?P<sha256>[0-9a-f]{64}) -->"
)
_ALIASES = {"core": "tao-core", "pytorch": "tao-pytorch", "deploy": "tao-deploy"}
_ALIASES.update({pkg: repo for repo, pkg in PACKAGES.items()})
_COPYRIGHT_LINE = re.compile(r"^# (SPDX-FileCopyrightText: )?Copyright ")
_RELEASE_SUBJECT = re.compile(r"^TAO (\d+\.\d+\.\d+) Release\b")  # "TAO 6.25.11 Release - Deploy"
_RELEASE_NAME = re.compile(r"(?i)(?:^|\b)release[/-]v?(\d+\.\d+\.\d+(?:[.+-]\w+)*)")  # Release/7.0.1, .../release/6.26.3
_VERSION_TEXT = re.compile(r"v?\d+\.\d+\.\d+(?:[.+-]\w+)*")
_SUBJECTS_SEARCHED = 500


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``git -C repo args...`` and capture text output; C locale so messages can be parsed."""
    env = dict(os.environ, LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):  # set when run from inside a git hook
        env.pop(var, None)
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=check
    )


def read_console_scripts(setup_py: Path) -> list[str]:
    """The string entries (``'name=module:func'``) of the ``console_scripts`` list in ``setup.py``.

    Read with ``ast`` (the file is never executed): the ``entry_points={'console_scripts': [...]}``
    keyword of the ``setup()``/``setuptools.setup()`` call, also when the list or the dict is a
    module-level variable. Returns ``[]`` if the file has no such list; raises ``WorkspaceError``
    if it is not valid Python.
    """
    try:
        source = setup_py.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WorkspaceError(f"cannot read {setup_py}: {why}",
                             f"restore it: git -C {setup_py.parent} checkout -- {setup_py.name}") from exc
    return parse_console_scripts(source, str(setup_py))


def parse_console_scripts(source: str, filename: str = "setup.py") -> list[str]:
    """:func:`read_console_scripts` for source text."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise WorkspaceError(
            f"cannot parse {filename} (line {exc.lineno}): {exc.msg}", "fix the file or restore it from git"
        ) from None
    assigned = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }

    def resolve(node: ast.AST | None) -> ast.AST | None:
        return assigned.get(node.id) if isinstance(node, ast.Name) else node

    scripts: list[str] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and _callee(call.func) == "setup"):
            continue
        entry_points = resolve(next((k.value for k in call.keywords if k.arg == "entry_points"), None))
        values: list[ast.AST | None] = []
        if isinstance(entry_points, ast.Dict):
            values = [
                v for k, v in zip(entry_points.keys, entry_points.values) if _const(k) == "console_scripts"
            ]
        elif isinstance(entry_points, ast.Call) and _callee(entry_points.func) == "dict":
            values = [k.value for k in entry_points.keywords if k.arg == "console_scripts"]
        for value in map(resolve, values):
            if isinstance(value, (ast.List, ast.Tuple)):
                scripts += [s for s in map(_const, value.elts) if isinstance(s, str)]
    return scripts


def script_name(entry: str) -> str:
    """``'name = module:func'`` -> ``'name'``."""
    return entry.split("=", 1)[0].strip()


def _callee(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _const(node: ast.AST | None):
    return node.value if isinstance(node, ast.Constant) else None


class Workspace:
    """A TAO workspace folder. Construct with :meth:`open` to validate it; the constructor does not."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # --- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path | str) -> Workspace:
        """Validate ``root`` and return the workspace; ``WorkspaceError`` names what is missing."""
        ws = cls(root)
        if not ws.root.is_dir():
            what = "is not a directory" if ws.root.exists() else "does not exist"
            raise WorkspaceError(
                f"TAO workspace {ws.root} {what}",
                f"clone tao-core, tao-pytorch and tao-deploy into one folder, or run `{INIT_HINT}`",
            )
        missing = [name for name in REPO_NAMES if not ws.repo(name).is_dir()]
        if missing:
            clones = "; ".join(f"git clone {CLONE_URLS[n]} {ws.repo(n)}" for n in missing)
            raise WorkspaceError(
                f"TAO workspace {ws.root} has no {_join(missing)} repositor{'y' if len(missing) == 1 else 'ies'}",
                f"clone {'it' if len(missing) == 1 else 'them'} ({clones}) or create a fresh workspace with "
                f"`{INIT_HINT}`",
            )
        for name in REPO_NAMES:
            problem = _not_a_git_repo(ws.repo(name))
            if problem:
                raise WorkspaceError(
                    f"{ws.repo(name)} is not a git repository ({problem})",
                    f"replace it with a clone (git clone {CLONE_URLS[name]}) or create a fresh workspace with "
                    f"`{INIT_HINT}`",
                )
        return ws

    def repo(self, name: str) -> Path:
        """Path of a repository: ``tao-core``/``tao-pytorch``/``tao-deploy`` (``core``, ``pytorch``, ... too)."""
        canonical = name if name in REPO_NAMES else _ALIASES.get(name)
        if canonical is None:
            raise ValueError(f"unknown TAO repository {name!r}; expected one of {', '.join(REPO_NAMES)}")
        return self.root / canonical

    def package(self, name: str) -> Path:
        """The Python package folder inside a repository, e.g. ``tao-pytorch/nvidia_tao_pytorch``."""
        repo = self.repo(name)
        return repo / PACKAGES[repo.name]

    # --- release facts -------------------------------------------------------------------------------

    @property
    def config_layout(self) -> str:
        """``"vendored"`` (7.x: ``nvidia_tao_pytorch/config`` exists) or ``"core"`` (6.x: tao-core only)."""
        return "vendored" if (self.package("tao-pytorch") / "config").is_dir() else "core"

    @property
    def tao_version(self) -> str | None:
        """TAO release of the workspace, best effort: tao-pytorch's (the port's main repo), else tao-deploy's,
        else tao-core's (see :meth:`repo_version`). ``None`` when nothing says."""
        versions = self.repo_versions()
        return next((versions[n] for n in ("tao-pytorch", "tao-deploy", "tao-core") if versions.get(n)), None)

    def repo_versions(self) -> dict[str, str | None]:
        """Best-effort version of each repository (see :meth:`repo_version`)."""
        return {name: self.repo_version(name)[0] for name in REPO_NAMES}

    def repo_version(self, name: str) -> tuple[str | None, str]:
        """(version, where it was read) of one repository; (None, why not) when nothing says.

        Sources, in order: the wheel marker ``workspace init --from-pypi`` writes into README.md; git -- a
        version tag on HEAD, a ``release/X.Y.Z`` branch, the newest commit subject naming a release
        (``Release/7.0.1``, ``... from NVIDIA/release/6.26.3``, ``TAO 6.25.11 Release``: NVIDIA's GitHub mirrors
        are committed that way; tags there are sparse and ``git describe`` finds years-old ones); the
        ``version=`` literal of setup.py; ``git describe --tags``; ``release/python/version.py`` (stale
        upstream: the 7.0.1 mirror says 6.25.10).
        """
        return _repo_version(self.repo(name))

    @property
    def copyright(self) -> str | None:
        """The copyright line (without ``# ``) of the workspace's files, for the headers of a port's files.

        NVIDIA's lines of the repositories' tracked ``.py`` files (``git grep``, first match per file): the
        ``SPDX-FileCopyrightText`` form tao-deploy's license-header hook asks for when any file has it, else
        the older ``Copyright (c) YEAR, NVIDIA CORPORATION`` form (6.x tao-core); of those the newest year, the
        most common line on a tie. ``None`` when no file has one.
        """
        counts: dict[str, int] = {}
        for name in REPO_NAMES:
            proc = git(self.repo(name), "grep", "-h", "-I", "-m1", "-E", _COPYRIGHT_LINE.pattern, "--", "*.py",
                       check=False)
            for line in proc.stdout.splitlines() if proc.returncode == 0 else ():
                if "NVIDIA" in line:
                    counts[line[2:].strip()] = counts.get(line[2:].strip(), 0) + 1
        if not counts:
            return None
        spdx = [line for line in counts if line.startswith("SPDX-FileCopyrightText:")]
        return max(spdx or counts, key=lambda line: (max(map(int, re.findall(r"\b(?:19|20)\d\d\b", line)), default=0),
                                                       counts[line], line))

    def submodules(self, name: str) -> list[str]:
        """Paths (repository-relative) of the git submodules ``.gitmodules`` declares in a repository."""
        if not (self.repo(name) / ".gitmodules").is_file():
            return []
        proc = git(self.repo(name), "config", "--file", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$",
                   check=False)
        return [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if " " in line]

    def console_scripts(self, name: str) -> list[str]:
        """``'name=module:func'`` entries of a repository's setup.py (``[]`` if it has none)."""
        setup_py = self.repo(name) / "setup.py"
        return read_console_scripts(setup_py) if setup_py.is_file() else []

    # --- this machine's model folders (outside the repos) ------------------------------------------------

    def model_folders(self) -> dict[str, str]:
        """Port name -> the local model folder it was generated from here ({} when none is recorded)."""
        try:
            data = json.loads((self.root / MODEL_FOLDERS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}

    def record_model_folder(self, name: str, folder: Path) -> None:
        """Remember where port ``name``'s local model is (best effort: verify then asks for ``--model``)."""
        data = {**self.model_folders(), name: str(Path(folder).resolve())}
        path = self.root / MODEL_FOLDERS_FILE
        try:
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass

    # --- state checks --------------------------------------------------------------------------------

    def dirty_paths(self, repo: str) -> list[str]:
        """Paths ``git status --porcelain`` reports for a repository (modified, staged or untracked)."""
        proc = git(self.repo(repo), "status", "--porcelain=v1", "-z", check=False)
        if proc.returncode:
            raise WorkspaceError(
                f"git status failed in {self.repo(repo)}: {_last_line(proc.stderr)}",
                "check that it is a healthy git repository",
            )
        paths, fields = [], proc.stdout.split("\0")
        i = 0
        while i < len(fields):
            entry = fields[i]
            i += 1
            if len(entry) < 4:
                continue
            paths.append(entry[3:])
            if entry[0] in "RC":  # renames/copies are followed by the source path
                i += 1
        return paths

    def ensure_clean(self, repos: Iterable[str] | None = None, *, max_paths: int = 3) -> None:
        """Raise ``WorkspaceError`` naming each dirty repository and its first paths."""
        problems = []
        for name in repos if repos is not None else REPO_NAMES:
            paths = self.dirty_paths(name)
            if paths:
                shown = ", ".join(paths[:max_paths]) + (
                    f" (+{len(paths) - max_paths} more)" if len(paths) > max_paths else ""
                )
                problems.append(f"{self.repo(name).name} has uncommitted changes: {shown}")
        if problems:
            raise WorkspaceError("; ".join(problems), "commit or stash, or pass --allow-dirty")

    def ensure_writable(self, repos: Iterable[str] | None = None) -> None:
        """Raise ``WorkspaceError`` if a repository (its root, package folder or ``.git``) cannot be written.

        Probes by creating and deleting a temporary file, which also catches read-only mounts that
        ``os.access`` reports as writable.
        """
        for name in repos if repos is not None else REPO_NAMES:
            repo = self.repo(name)
            for folder in (repo, self.package(name), repo / ".git"):
                if not folder.is_dir():
                    continue
                try:
                    with tempfile.TemporaryFile(dir=folder, prefix=".tao-scaffold-probe-"):
                        pass
                except OSError as exc:
                    raise WorkspaceError(
                        f"cannot write to {folder}: {exc.strerror or exc}",
                        "fix its permissions or mount, or work on a writable copy of the workspace",
                    ) from None

    # --- names already taken -------------------------------------------------------------------------

    def existing_networks(self) -> dict[str, str]:
        """Every network name already taken in the workspace -> where (first place found, relative).

        Looks at the per-network folders of ``nvidia_tao_pytorch/{cv,multimodal,ssl,sdg,pointcloud}``,
        the ``config/`` folders of all three packages (and deploy's ``config/multimodal/*``), the
        ``nvidia_tao_deploy/{cv,multimodal}`` folders and the console_scripts of every setup.py.
        Helper folders such as ``cv/common`` or ``config/utils`` are included: a port must not use
        those names either.
        """
        taken: dict[str, str] = {}

        def add_dirs(parent: Path) -> None:
            if not parent.is_dir():
                return
            for child in sorted(parent.iterdir()):
                if child.is_dir() and not child.name.startswith((".", "_")):
                    taken.setdefault(child.name, child.relative_to(self.root).as_posix())

        pytorch, core, deploy = (
            self.package("tao-pytorch"),
            self.package("tao-core"),
            self.package("tao-deploy"),
        )
        for domain in PYTORCH_DOMAINS:
            add_dirs(pytorch / domain)
        for package in (pytorch, core, deploy):
            add_dirs(package / "config")
        add_dirs(deploy / "config" / "multimodal")
        for domain in DEPLOY_DOMAINS:
            add_dirs(deploy / domain)
        for name in ("tao-pytorch", "tao-deploy", "tao-core"):
            for entry in self.console_scripts(name):
                taken.setdefault(script_name(entry), f"{name}/setup.py console_scripts")
        return taken

    def backbone_names(self) -> list[str]:
        """Names registered with ``@BACKBONE_REGISTRY.register()`` in ``cv/backbone_v2/*.py`` (file order).

        Found with ``ast``: decorated functions/classes, plus module-level
        ``BACKBONE_REGISTRY.register(obj)`` calls. 6.x releases without backbone_v2 give ``[]``.
        """
        return list(self.backbones())

    def backbones(self) -> dict[str, str]:
        """Registered backbone name -> ``file.py:line`` (see :meth:`backbone_names`)."""
        return registered_backbones(self.root / BACKBONE_V2)


def registered_backbones(folder: Path) -> dict[str, str]:
    """Names registered with ``BACKBONE_REGISTRY`` in ``folder/*.py`` -> ``file.py:line`` (read with ``ast``)."""
    found: dict[str, str] = {}
    for source in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        try:
            tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if any(_is_register(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list):
                    found.setdefault(node.name, f"{source.name}:{node.lineno}")
            elif isinstance(node, ast.Call) and _is_register(node.func) and node.args:
                if isinstance(node.args[0], ast.Name):
                    found.setdefault(node.args[0].id, f"{source.name}:{node.lineno}")
    return found


def _is_register(func: ast.AST) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "register"
        and isinstance(func.value, ast.Name)
        and func.value.id == "BACKBONE_REGISTRY"
    )


def _not_a_git_repo(path: Path) -> str | None:
    """Why ``path`` is not the top level of a git work tree, or ``None`` if it is."""
    try:
        proc = git(path, "rev-parse", "--show-toplevel", check=False)
    except FileNotFoundError:
        raise WorkspaceError("git is not installed", "install git (apt-get install git)") from None
    if proc.returncode:
        return _last_line(proc.stderr) or "git rev-parse failed"
    top = Path(proc.stdout.strip())
    if top.resolve() != path.resolve():
        return f"it is a plain folder inside the git repository {top}"
    return None


def _repo_version(repo: Path) -> tuple[str | None, str]:
    readme = repo / "README.md"
    if readme.is_file():
        match = WHEEL_MARKER.search(readme.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match["version"], f"PyPI wheel {match['dist']}"
    proc = git(repo, "describe", "--tags", "--exact-match", "HEAD", check=False)
    tag = proc.stdout.strip() if proc.returncode == 0 else ""
    if _VERSION_TEXT.fullmatch(tag):
        return tag.lstrip("v"), f"tag {tag}"
    branch = git(repo, "symbolic-ref", "--short", "-q", "HEAD", check=False).stdout.strip()
    match = _RELEASE_NAME.search(branch)
    if match and branch.lower().startswith(("release/", "release-")):
        return match[1], f"branch {branch}"
    proc = git(repo, "log", f"-{_SUBJECTS_SEARCHED}", "--format=%h %s", check=False)
    for ahead, line in enumerate(proc.stdout.splitlines() if proc.returncode == 0 else ()):
        commit, _, subject = line.partition(" ")
        match = _RELEASE_NAME.search(subject) or _RELEASE_SUBJECT.match(subject)
        if match:
            after = f", {ahead} commit{'s' if ahead > 1 else ''} after it" if ahead else ""
            return match[1], f"commit {commit} {subject[:60]!r}{after}"
    setup_py = repo / "setup.py"
    if setup_py.is_file():
        try:
            tree = ast.parse(setup_py.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            tree = None
        for call in ast.walk(tree) if tree else ():
            if isinstance(call, ast.Call) and _callee(call.func) == "setup":
                version = next((_const(k.value) for k in call.keywords if k.arg == "version"), None)
                if isinstance(version, str):
                    return version, "setup.py"
    proc = git(repo, "describe", "--tags", check=False)
    described = proc.stdout.strip() if proc.returncode == 0 else ""
    match = re.match(r"v?(\d+\.\d+\.\d+)", described)
    if match:
        return match[1], f"git describe {described} (nearest tag)"
    version_py = repo / "release" / "python" / "version.py"
    if version_py.is_file():
        try:
            tree = ast.parse(version_py.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            return None, "release/python/version.py does not parse"
        parts = {
            t.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        if all(isinstance(parts.get(k), str) for k in ("MAJOR", "MINOR", "PATCH")):
            return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}", "release/python/version.py (often stale)"
    return None, "no wheel marker, version tag, release branch or release commit"


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("fatal: ") if lines else ""
