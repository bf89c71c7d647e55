"""Port names: validation and the derived spellings the blueprints use."""

from __future__ import annotations

import keyword
import re

from scaffolder.errors import NameError_

_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def validate_name(name: str) -> str:
    if not _SNAKE.match(name or ""):
        raise NameError_(
            f"port name {name!r} is not a snake_case identifier",
            "use lowercase letters, digits and single underscores, starting with a letter (e.g. vit_imagenet100)",
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise NameError_(f"port name {name!r} is a Python keyword", f"pick another name, e.g. {name}_net")
    return name


def pascal_case(name: str) -> str:
    """``vit_imagenet100`` -> ``VitImagenet100``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))
