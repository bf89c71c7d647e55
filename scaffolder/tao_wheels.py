"""The TAO 7.x PyPI wheels: download them and unpack what runs on this interpreter.

nvidia-tao-pytorch ships only a cp312 wheel whose compiled CUDA ops (``*.so``) are useless on a CPU
machine; its pure-Python files import on 3.10+ and are all that ``workspace init`` and the test
environment need.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

TAO_DISTRIBUTIONS = {
    "tao-core": "nvidia-tao-core",
    "tao-pytorch": "nvidia-tao-pytorch",
    "tao-deploy": "nvidia-tao-deploy",
}
# Platform-specific wheels that pip must be told to fetch for another interpreter.
_PLATFORM_WHEELS = {"nvidia-tao-pytorch": ["--python-version", "3.12", "--only-binary=:all:"]}
_SKIPPED_SUFFIXES = (".so", ".pyd", ".dll")


def default_cache() -> Path:
    """``$TAO_SCAFFOLD_WHEEL_CACHE`` (as in scripts/bootstrap-env.sh), else ``~/.cache/tao-scaffold/wheels``."""
    override = os.environ.get("TAO_SCAFFOLD_WHEEL_CACHE")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "tao-scaffold" / "wheels"


def find_wheel(cache: Path, distribution: str, version: str) -> Path | None:
    stem = distribution.replace("-", "_")
    hits = sorted(cache.glob(f"{stem}-{version}-*.whl"))
    return hits[0] if hits else None


def download_wheel(distribution: str, version: str, cache: Path | None = None) -> Path:
    """Return the cached wheel, downloading it with pip (no dependencies) when absent."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    wheel = find_wheel(cache, distribution, version)
    if wheel:
        return wheel
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache)]
    cmd += _PLATFORM_WHEELS.get(distribution, []) + [f"{distribution}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = find_wheel(cache, distribution, version)
    if proc.returncode or not wheel:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        # pip's most useful line names the versions that do exist; prefer it over the last line.
        reason = next((line for line in lines if "from versions:" in line), lines[-1])
        reason = reason.removeprefix("ERROR: ").strip()
        raise RuntimeError(f"pip could not download {distribution}=={version}: {reason}")
    return wheel


def wheel_sha256(wheel: Path) -> str:
    """Hex sha256 of the wheel file (the hash PyPI publishes)."""
    digest = hashlib.sha256()
    with open(wheel, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_members(wheel: Path) -> list[zipfile.ZipInfo]:
    """The wheel's importable files: no .dist-info, no compiled extension modules."""
    with zipfile.ZipFile(wheel) as zf:
        return [
            info
            for info in zf.infolist()
            if not info.is_dir()
            and ".dist-info/" not in info.filename
            and not info.filename.endswith(_SKIPPED_SUFFIXES)
        ]


def skipped_members(wheel: Path) -> list[str]:
    """Names of the compiled extension modules that :func:`extract_pure_python` leaves out."""
    with zipfile.ZipFile(wheel) as zf:
        return [n for n in zf.namelist() if ".dist-info/" not in n and n.endswith(_SKIPPED_SUFFIXES)]


def extract_pure_python(wheel: Path, dest: Path) -> int:
    """Unpack the wheel's package files into ``dest``; returns the number of files written.

    Modes are set from the wheel, not the umask (0o755 if the wheel marks a file executable, else
    0o644), so two extractions of one wheel are byte- and mode-identical. Member names that would
    escape ``dest`` (absolute, ``..``) are refused.
    """
    members = wheel_members(wheel)
    with zipfile.ZipFile(wheel) as zf:
        for info in members:
            path = dest.joinpath(*safe_member_parts(wheel, info))
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(path, "wb") as out:
                while block := src.read(1 << 20):
                    out.write(block)
            os.chmod(path, 0o755 if is_executable(info) else 0o644)
    return len(members)


def safe_member_parts(wheel: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    """Path components of a wheel member; ``ValueError`` for names that would escape the target."""
    parts = PurePosixPath(info.filename).parts
    if (
        not parts
        or info.filename.startswith("/")
        or ".." in parts
        or "\\" in info.filename
        or ".git" in parts
    ):
        raise ValueError(f"{wheel.name}: unsafe member name {info.filename!r}")
    return parts


def is_executable(info: zipfile.ZipInfo) -> bool:
    """Whether the wheel marks the member executable (any x bit in its Unix mode)."""
    return bool((info.external_attr >> 16) & 0o111)


def wheel_metadata(wheel: Path) -> dict[str, str]:
    """Single-valued fields of the wheel's METADATA (Name, Version, Summary, License, Requires-Python...)."""
    from email.parser import HeaderParser

    with zipfile.ZipFile(wheel) as zf:
        name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            return {}
        message = HeaderParser().parsestr(zf.read(name).decode("utf-8", "replace"))
    return {key: str(value) for key, value in message.items()}


def console_scripts(wheel: Path) -> list[str]:
    """``name = module:func`` lines of the wheel's console_scripts group, in file order."""
    with zipfile.ZipFile(wheel) as zf:
        name = next((n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")), None)
        if name is None:
            return []
        text = zf.read(name).decode()
    scripts, in_group = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            in_group = line == "[console_scripts]"
        elif in_group and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            scripts.append(f"{key}={value}")
    return scripts


def strip_compiled(wheel: Path, dest_dir: Path) -> Path:
    """Copy ``wheel`` into ``dest_dir`` (same file name) without its compiled extension modules.

    What stays is byte-identical to the original members (same order, names, timestamps, modes; deflate level 9);
    RECORD loses the rows of the removed files. The result is what :func:`extract_pure_python` and
    ``workspace init`` read anyway (nvidia-tao-pytorch: 75 MB -> about 4 MB), small enough to travel to a host
    without network (scripts/gpu-wheels.sh). Refuses to overwrite the source.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / wheel.name
    if out.resolve() == wheel.resolve():
        raise ValueError(f"{wheel}: the stripped copy would overwrite the wheel itself")
    skipped = set(skipped_members(wheel))
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            if info.filename in skipped:
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                rows = data.decode("utf-8").splitlines(keepends=True)
                data = "".join(r for r in rows if r.split(",", 1)[0] not in skipped).encode("utf-8")
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr, copy.create_system = info.external_attr, info.create_system
            copy.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(copy, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(tmp, out)
    return out


if __name__ == "__main__":  # used by scripts/bootstrap-env.sh, scripts/gpu-verify.sh, scripts/gpu-wheels.sh
    import sysconfig

    if sys.argv[1] == "--strip":  # python -m scaffolder.tao_wheels --strip WHEEL DEST_DIR
        made = strip_compiled(Path(sys.argv[2]), Path(sys.argv[3]))
        print(f"{made}: {made.stat().st_size / 2**20:.1f} MiB (from {Path(sys.argv[2]).stat().st_size / 2**20:.1f} MiB, "
              f"{len(skipped_members(Path(sys.argv[2])))} compiled files left out)")
        sys.exit(0)
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(sysconfig.get_paths()["purelib"])
    print(f"unpacked {extract_pure_python(Path(sys.argv[1]), target)} files into {target}")
