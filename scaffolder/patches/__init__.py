"""LibCST codemods for the edits tao-scaffold makes to existing TAO Python files."""

from scaffolder.patches.backbone_init import (
    BACKBONE_PACKAGE,
    RegisterBackboneModule,
    register_backbone_module,
)
from scaffolder.patches.setup_py import AddConsoleScript, add_console_script, read_console_scripts

__all__ = [
    "BACKBONE_PACKAGE",
    "AddConsoleScript",
    "RegisterBackboneModule",
    "add_console_script",
    "read_console_scripts",
    "register_backbone_module",
]
