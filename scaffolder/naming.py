"""Port names: validation and the derived spellings the blueprints use."""

from __future__ import annotations

import keyword
import re
import sys

from scaffolder.errors import NameError_

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MAX_NAME_LENGTH = 64  # a folder, module, console script and class name in three repos
# A port installs a console script NAME (both setup.py files): it must not shadow a command people rely on in
# a TAO environment, nor import-shadow a standard-library module (NAME is also a package in cv/).
SHADOWED_COMMANDS = frozenset({
    "python", "python3", "pip", "pip3", "pytest", "tao", "tao_pt", "tao_deploy", "conda", "git", "docker", "bash",
    "sh", "ls", "cp", "mv", "rm", "make", "cmake", "nvidia_smi", "trtexec", "torchrun", "jupyter", "ipython",
    "black", "pylint", "copier", "tensorboard", "mpirun", "ssh", "sudo", "env", "test", "setup", "main",
})


def validate_name(name: str) -> str:
    if not isinstance(name, str):
        raise NameError_(f"port name {name!r} is not a string", "quote it in port.yml, e.g. name: vit_imagenet100")
    if len(name) > MAX_NAME_LENGTH:
        raise NameError_(f"port name {name[:20]!r}... is {len(name)} characters long (at most {MAX_NAME_LENGTH})",
                         "pick a shorter name")
    if not _SNAKE.match(name or ""):
        raise NameError_(
            f"port name {name!r} is not a snake_case identifier",
            "use lowercase letters, digits and single underscores, starting with a letter (e.g. vit_imagenet100)",
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise NameError_(f"port name {name!r} is a Python keyword", f"pick another name, e.g. {name}_net")
    if name in SHADOWED_COMMANDS or name in sys.stdlib_module_names:
        what = "command" if name in SHADOWED_COMMANDS else "Python standard-library module"
        raise NameError_(f"port name {name!r} would shadow the {what} {name!r} (the port installs a console "
                         f"script and a package of that name)", f"pick another name, e.g. {name}_net")
    return name


def pascal_case(name: str) -> str:
    """``vit_imagenet100`` -> ``VitImagenet100``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))
