#!/usr/bin/env python
"""Check the GPU-host wheel set (scripts/gpu-wheels.sh) before it travels.

    python scripts/gpu_wheels_check.py [--wheels .whl] [--python-version 3.12] [--host scripts/gpu-host-packages.txt]
        [--no-pip]

* one version of each package (pip refuses two in one install);
* every wheel installs on CPython X.Y (nvidia-tao-pytorch: unpacked, not installed), manylinux x86_64 (its tags; then ``pip install --dry-run --no-index
  --no-deps`` with pip's own platform matching, unless ``--no-pip``);
* the closure: each requirement of a carried wheel (markers evaluated for Linux x86_64, CPython X.Y, no extras)
  is carried or on the host list; where the version of the provider is known (carried, or listed with a
  version), it must satisfy the specifier. The TAO wheels (under ``tao/``) are left out of the closure: their
  metadata lists TAO's whole server stack (flask, ngcsdk, kubernetes, ...), which the commands verify runs do
  not import; the CPU rehearsal (gpu-verify.sh on this machine's Python) is what checks their imports.
* a carried package that the host already has is reported (the host's copy gets replaced).

Exit 0 when nothing is wrong; 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import email.parser
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
# gpu-verify.sh unpacks this one with scaffolder.tao_wheels (it is cp312-only and never pip-installed)
UNPACKED = {"nvidia-tao-pytorch"}
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in range(39, 4, -1)] + ["manylinux2014_x86_64", "manylinux2010_x86_64",
                                                                      "manylinux1_x86_64", "linux_x86_64"]


def read_host(path: Path) -> dict[str, Version | None]:
    host = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        host[canonicalize_name(name)] = Version(version) if version else None
    return host


def metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.HeaderParser().parsestr(zf.read(name).decode("utf-8", "replace"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--host", type=Path, default=ROOT / "scripts" / "gpu-host-packages.txt")
    parser.add_argument("--no-pip", action="store_true", help="skip pip's dry-run install")
    args = parser.parse_args()
    major, minor = (int(v) for v in args.python_version.split("."))
    supported = set(cpython_tags((major, minor), platforms=PLATFORMS))
    supported |= set(compatible_tags((major, minor), f"cp{major}{minor}", platforms=PLATFORMS))
    host = read_host(args.host)
    env = dict(default_environment(), python_version=f"{major}.{minor}", python_full_version=f"{major}.{minor}.3",
               sys_platform="linux", platform_system="Linux", platform_machine="x86_64", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython", extra="")

    wheels = sorted(args.wheels.rglob("*.whl"))
    problems, notes = [], []
    carried: dict[str, tuple[Version, Path]] = {}
    for wheel in wheels:
        name, version, _build, tags = parse_wheel_filename(wheel.name)
        if name in carried:
            problems.append(f"two versions of {name}: {carried[name][1].name} and {wheel.name}")
        carried[name] = (version, wheel)
        if name in UNPACKED:
            notes.append(f"{wheel.name}: unpacked (its pure-Python files), not pip-installed")
        elif not tags & supported:
            problems.append(f"{wheel.name}: no tag installs on cp{major}{minor} manylinux x86_64")
        if name in host:
            notes.append(f"{name} {version} is carried although the host has {name} {host[name] or '(version unknown)'}")
    for name, (version, wheel) in sorted(carried.items()):
        if wheel.parent.name == "tao":
            continue
        for line in metadata(wheel).get_all("Requires-Dist") or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            dep = canonicalize_name(req.name)
            if dep in carried:
                have = carried[dep][0]
            elif dep in host:
                have = host[dep]
            else:
                problems.append(f"{name} {version} needs {req} -- neither carried nor on the host")
                continue
            if have is not None and req.specifier and not req.specifier.contains(have, prereleases=True):
                where = "carried" if dep in carried else "on the host"
                problems.append(f"{name} {version} needs {req}, {where}: {dep} {have}")
    if not args.no_pip and wheels:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--dry-run", "-q",
                   "--no-index", "--no-deps", "--only-binary=:all:", "--python-version", f"{major}.{minor}",
                   "--implementation", "cp", "--target", tmp, *[a for p in PLATFORMS for a in ("--platform", p)],
                   *[str(w) for w in wheels if parse_wheel_filename(w.name)[0] not in UNPACKED]]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  env={**__import__("os").environ, "PIP_CONSTRAINT": ""})
            if proc.returncode:
                problems.append("pip install --dry-run --no-index --no-deps failed: "
                                + (proc.stderr.strip().splitlines() or ["no output"])[-1])
            else:
                notes.append(f"pip install --dry-run --no-index --no-deps (cp{major}{minor} manylinux x86_64): "
                             f"{len(cmd) - cmd.index(tmp) - 1 - 2 * len(PLATFORMS)} wheels would install")
    size = sum(w.stat().st_size for w in wheels)
    print(f"{len(wheels)} wheels ({size / 2**20:.1f} MiB), {len(carried)} packages; host list: {len(host)} packages "
          f"({sum(v is not None for v in host.values())} with a version)")
    for note in notes:
        print(f"note: {note}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print("closure: ok" if not problems else f"closure: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
