"""The TAO 7.x PyPI wheels: download them and unpack what runs on this interpreter.

nvidia-tao-pytorch ships only a cp312 wheel whose compiled CUDA ops (``*.so``) are useless on a CPU
machine; its pure-Python files import on 3.10+ and are all that ``workspace init`` and the test
environment need.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

TAO_DISTRIBUTIONS = {
    "tao-core": "nvidia-tao-core",
    "tao-pytorch": "nvidia-tao-pytorch",
    "tao-deploy": "nvidia-tao-deploy",
}
# Platform-specific wheels that pip must be told to fetch for another interpreter.
_PLATFORM_WHEELS = {"nvidia-tao-pytorch": ["--python-version", "3.12", "--only-binary=:all:"]}
_SKIPPED_SUFFIXES = (".so", ".pyd", ".dll")


def default_cache() -> Path:
    return Path.home() / ".cache" / "tao-scaffold" / "wheels"


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
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = find_wheel(cache, distribution, version)
    if proc.returncode or not wheel:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pip could not download {distribution}=={version}: {last}")
    return wheel


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


def extract_pure_python(wheel: Path, dest: Path) -> int:
    """Unpack the wheel's package files into ``dest``; returns the number of files written."""
    members = wheel_members(wheel)
    with zipfile.ZipFile(wheel) as zf:
        for info in members:
            zf.extract(info, dest)
    return len(members)


def console_scripts(wheel: Path) -> list[str]:
    """``name = module:func`` lines of the wheel's console_scripts group, in file order."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
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


if __name__ == "__main__":  # used by scripts/bootstrap-env.sh
    import sysconfig

    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(sysconfig.get_paths()["purelib"])
    print(f"unpacked {extract_pure_python(Path(sys.argv[1]), target)} files into {target}")
