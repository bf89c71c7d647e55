"""Read and extend the ``console_scripts`` list of a TAO ``setup.py`` (tao-pytorch, tao-deploy)."""

from __future__ import annotations

import re
from typing import Sequence, TypeVar

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, TransformFailure, TransformSuccess, VisitorBasedCodemodCommand
from libcst.codemod import transform_module

from scaffolder.errors import NameError_, ScaffoldError, WorkspaceError

_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_TARGET = re.compile(rf"^{_DOTTED}:{_DOTTED}$")

_Item = TypeVar("_Item", cst.Element, cst.ImportAlias)


def parse_source(source: str, filename: str) -> cst.Module:
    """Parse ``source`` with libcst, turning syntax errors into a ``WorkspaceError``."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise WorkspaceError(
            f"cannot parse {filename} (line {exc.raw_line}): {exc.message}",
            "fix the file's syntax or restore it from git",
        ) from None


def run_codemod(command: VisitorBasedCodemodCommand, source: str) -> str:
    """Run ``command`` on ``source``; re-raise our own errors instead of codemod tracebacks."""
    result = transform_module(command, source)
    if isinstance(result, TransformSuccess):
        return result.code
    if isinstance(result, TransformFailure):
        if isinstance(result.error, ScaffoldError):
            raise result.error
        filename = command.context.filename or "<source>"
        if isinstance(result.error, cst.ParserSyntaxError):
            parse_source(source, filename)  # raises a WorkspaceError with the line
        raise WorkspaceError(
            f"cannot patch {filename}: {type(result.error).__name__}: {result.error}",
            "edit the file by hand or report this as a tao-scaffold bug",
        )
    return source  # TransformSkip / TransformExit: nothing changed


def append_item(
    items: Sequence[_Item],
    new: _Item,
    open_ws: cst.BaseParenthesizableWhitespace | None,
    close_ws: cst.BaseParenthesizableWhitespace | None,
) -> tuple[list[_Item], cst.BaseParenthesizableWhitespace | None]:
    """Append ``new`` to a bracketed, comma-separated sequence, copying its layout.

    ``open_ws``/``close_ws`` are the whitespace after the opening and before the closing bracket.
    Returns the new items and the new ``close_ws``. The old last item keeps its same-line comment;
    comment lines between the last item and the closing bracket stay just before the bracket, and
    the trailing-comma convention of the sequence is preserved.
    """
    if not items:
        return [new.with_changes(comma=cst.MaybeSentinel.DEFAULT)], close_ws
    *head, last = items
    sep = _separator(head, open_ws)
    comma = last.comma if isinstance(last.comma, cst.Comma) else None
    # libcst keeps the last item's same-line comment (and any comment lines after it) in the
    # whitespace before the closing bracket, even when there is a trailing comma.
    if isinstance(close_ws, cst.ParenthesizedWhitespace) and isinstance(sep, cst.ParenthesizedWhitespace):
        old_comma = (comma or cst.Comma()).with_changes(
            whitespace_after=sep.with_changes(first_line=close_ws.first_line)
        )
        close_ws = close_ws.with_changes(first_line=cst.TrailingWhitespace())
    else:
        old_comma = (comma or cst.Comma()).with_changes(whitespace_after=sep)
    new_comma = comma or cst.MaybeSentinel.DEFAULT
    return [*head, last.with_changes(comma=old_comma), new.with_changes(comma=new_comma)], close_ws


def _separator(head: Sequence[_Item], open_ws) -> cst.BaseParenthesizableWhitespace:
    ws = next((i.comma.whitespace_after for i in reversed(head) if isinstance(i.comma, cst.Comma)), open_ws)
    if isinstance(ws, cst.ParenthesizedWhitespace):
        return ws.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    if isinstance(ws, cst.SimpleWhitespace) and ws.value:
        return ws
    return cst.SimpleWhitespace(" ")


def string_quote(nodes: Sequence[cst.CSTNode], default: str = "'") -> str:
    """The quote character of the last plain string literal in ``nodes``."""
    for node in reversed(nodes):
        value = getattr(node, "value", node)
        if isinstance(value, cst.SimpleString):
            return value.quote[0]
    return default


# --- locating the console_scripts list -------------------------------------------------------------

_CONSOLE_KEY = m.MatchIfTrue(
    lambda n: isinstance(n, cst.SimpleString) and n.evaluated_value == "console_scripts"
)


def _find_console_scripts(module: cst.Module, filename: str) -> cst.List:
    """The one ``console_scripts`` list literal, following a module-level variable if needed."""
    values = [el.value for el in m.findall(module, m.DictElement(key=_CONSOLE_KEY))]
    values += [  # entry_points=dict(console_scripts=[...])
        arg.value
        for call in m.findall(module, m.Call(func=m.Name("dict")))
        for arg in call.args
        if m.matches(arg, m.Arg(keyword=m.Name("console_scripts")))
    ]
    if not values:
        raise WorkspaceError(
            f"no console_scripts list found in {filename}",
            "check that this is the tao-pytorch/tao-deploy setup.py, or add the entry point by hand",
        )
    if len(values) > 1:
        raise WorkspaceError(
            f"{len(values)} console_scripts lists found in {filename}; cannot tell which one to patch",
            "add the entry point by hand",
        )
    value = values[0]
    if isinstance(value, cst.Name):
        value = _module_level_value(module, value.value, filename)
    if not isinstance(value, cst.List):
        raise WorkspaceError(
            f"console_scripts in {filename} is not a literal list",
            "add the entry point by hand",
        )
    return value


def _module_level_value(module: cst.Module, name: str, filename: str) -> cst.BaseExpression:
    found = []
    for stmt in module.body:
        for small in getattr(stmt, "body", ()) if isinstance(stmt, cst.SimpleStatementLine) else ():
            if m.matches(small, m.Assign(targets=[m.AssignTarget(target=m.Name(name))])):
                found.append(small.value)
            elif m.matches(small, m.AnnAssign(target=m.Name(name))) and small.value is not None:
                found.append(small.value)
    if len(found) != 1:
        raise WorkspaceError(
            f"console_scripts in {filename} refers to {name!r}, which is not assigned exactly once at module level",
            "add the entry point by hand",
        )
    return found[0]


def _entries(scripts: cst.List) -> list[tuple[str, str]]:
    """``(name, target)`` for each string literal ``'name = target'`` in the list."""
    out = []
    for el in scripts.elements:
        if isinstance(el, cst.Element) and isinstance(el.value, (cst.SimpleString, cst.ConcatenatedString)):
            text = el.value.evaluated_value
            if isinstance(text, str) and "=" in text:
                name, target = text.split("=", 1)
                out.append((name.strip(), " ".join(target.split())))
    return out


def read_console_scripts(source: str, *, filename: str = "setup.py") -> dict[str, str]:
    """``name -> "module:func"`` for every string entry of the ``console_scripts`` list."""
    return dict(_entries(_find_console_scripts(parse_source(source, filename), filename)))


# --- the codemod ------------------------------------------------------------------------------------


class AddConsoleScript(VisitorBasedCodemodCommand):
    """Append ``'name=target'`` to ``console_scripts``; no-op if already there, error if ``name`` is taken."""

    DESCRIPTION = "Register a console_scripts entry point in setup.py."

    def __init__(self, context: CodemodContext, name: str, target: str) -> None:
        super().__init__(context)
        if not _SCRIPT_NAME.match(name):
            raise NameError_(f"invalid console script name {name!r}", "use letters, digits, '_', '-' or '.'")
        if not _TARGET.match(target):
            raise NameError_(
                f"invalid console script target {target!r}",
                "use 'package.module:function', e.g. nvidia_tao_pytorch.cv.x.entrypoint.x:main",
            )
        self.name, self.target = name, target
        self._scripts: cst.List | None = None

    def visit_Module(self, node: cst.Module) -> bool:
        filename = self.context.filename or "setup.py"
        scripts = _find_console_scripts(node, filename)
        targets = {t for n, t in _entries(scripts) if n == self.name}
        if targets - {self.target}:
            raise NameError_(
                f"console script {self.name!r} in {filename} already points to {sorted(targets - {self.target})[0]}, "
                f"not {self.target}",
                "pick another port name or remove the existing entry",
            )
        self._scripts = None if targets else scripts
        return self._scripts is not None

    def leave_List(self, original_node: cst.List, updated_node: cst.List) -> cst.List:
        if original_node is not self._scripts:
            return updated_node
        last = next(
            (e.value for e in reversed(updated_node.elements) if isinstance(e.value, cst.SimpleString)), None
        )
        spacing = re.search(r"\s*=\s*", last.evaluated_value) if last is not None else None
        eq = spacing.group(0) if spacing else "="
        quote = string_quote(list(updated_node.elements))
        new = cst.Element(cst.SimpleString(f"{quote}{self.name}{eq}{self.target}{quote}"))
        elements, close_ws = append_item(
            updated_node.elements,
            new,
            updated_node.lbracket.whitespace_after,
            updated_node.rbracket.whitespace_before,
        )
        return updated_node.with_changes(
            elements=elements, rbracket=updated_node.rbracket.with_changes(whitespace_before=close_ws)
        )


def add_console_script(source: str, name: str, target: str, *, filename: str = "setup.py") -> str:
    """Return ``source`` with ``'name=target'`` registered in its ``console_scripts`` list."""
    parse_source(source, filename)
    return run_codemod(AddConsoleScript(CodemodContext(filename=filename), name, target), source)
