"""Register a generated backbone module in ``nvidia_tao_pytorch/cv/backbone_v2/__init__.py``.

Importing the module is what runs its ``@BACKBONE_REGISTRY.register()`` decorators, and fvcore's
registry raises on a second registration of a name, so a name may be imported from one module only.
"""

from __future__ import annotations

import keyword

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand

from scaffolder.errors import NameError_
from scaffolder.layout import BACKBONE_V2_PACKAGE as BACKBONE_PACKAGE
from scaffolder.patches.setup_py import append_item, parse_source, run_codemod, string_quote


def _dotted(node: cst.BaseExpression | None) -> str:
    if node is None:
        return ""
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return node.value if isinstance(node, cst.Name) else ""


class RegisterBackboneModule(VisitorBasedCodemodCommand):
    """Import ``names`` from backbone module ``module`` and append them to ``__all__`` (idempotent)."""

    DESCRIPTION = "Import a backbone module's factories in backbone_v2/__init__.py and export them."

    def __init__(
        self, context: CodemodContext, module: str, names: list[str], package: str = BACKBONE_PACKAGE
    ) -> None:
        super().__init__(context)
        for ident in (module, *names):
            if not ident.isidentifier() or keyword.iskeyword(ident):
                raise NameError_(
                    f"invalid backbone identifier {ident!r}", "use a snake_case Python identifier"
                )
        if not names:
            raise NameError_(
                f"no backbone names given for module {module!r}", "pass at least one factory name"
            )
        self.backbone_module, self.names, self.package = module, list(dict.fromkeys(names)), package
        # Filled in by visit_Module from the file being patched.
        self._extend: cst.ImportFrom | None = None  # existing import of this module, to extend
        self._after: cst.SimpleStatementLine | None = None  # last top-level import statement
        self._style: cst.ImportFrom | None = None  # import whose layout a new import copies
        self._all: cst.List | cst.Tuple | None = None
        self._missing: list[str] = []
        self._unexported: list[str] = []
        self._prefix = f"{package}."

    def _sibling(self, node: cst.ImportFrom) -> str | None:
        """The backbone_v2 module a ``from ... import`` reads from, or None for other imports."""
        dotted = _dotted(node.module)
        if len(node.relative) == 1:
            return dotted or None
        if not node.relative and dotted.startswith(self.package + "."):
            return dotted[len(self.package) + 1 :]
        return None

    def visit_Module(self, node: cst.Module) -> bool:
        filename = self.context.filename or "__init__.py"
        imported: dict[str, str] = {}  # local name -> where it comes from
        self._extend = self._after = self._style = None
        relative = absolute = False
        for stmt in node.body:
            imports = [s for s in getattr(stmt, "body", ()) if isinstance(s, (cst.Import, cst.ImportFrom))]
            if not isinstance(stmt, cst.SimpleStatementLine) or not imports:
                continue
            self._after = stmt
            for imp in imports:
                sibling = self._sibling(imp) if isinstance(imp, cst.ImportFrom) else None
                if isinstance(imp, cst.ImportFrom) and (sibling is not None or self._style is None):
                    self._style = imp
                relative |= sibling is not None and bool(imp.relative)
                absolute |= sibling is not None and not imp.relative
                if (
                    sibling == self.backbone_module
                    and self._extend is None
                    and not isinstance(imp.names, cst.ImportStar)
                ):
                    self._extend = imp
                if isinstance(imp.names, cst.ImportStar):
                    continue
                source = sibling if sibling is not None else _dotted(getattr(imp, "module", None)) or "import"
                for alias in imp.names:
                    local = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
                    imported.setdefault(local, source)
        for name in self.names:
            if imported.get(name, self.backbone_module) != self.backbone_module:
                raise NameError_(
                    f"backbone {name!r} is already imported from {imported[name]!r} in {filename}",
                    "pick another backbone name; fvcore's registry rejects duplicate registrations",
                )
        self._missing = [n for n in self.names if n not in imported]
        self._prefix = "." if relative and not absolute else f"{self.package}."
        self._all = self._all_list(node)
        exported = (
            {e.value.evaluated_value for e in self._all.elements if m.matches(e.value, m.SimpleString())}
            if self._all
            else set()
        )
        self._unexported = [n for n in self.names if n not in exported]
        return bool(self._missing or (self._all and self._unexported))

    @staticmethod
    def _all_list(module: cst.Module) -> cst.List | cst.Tuple | None:
        for stmt in module.body:
            for small in getattr(stmt, "body", ()) if isinstance(stmt, cst.SimpleStatementLine) else ():
                if m.matches(
                    small, m.Assign(targets=[m.AssignTarget(target=m.Name("__all__"))])
                ) and isinstance(small.value, (cst.List, cst.Tuple)):
                    return small.value
        return None

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if original_node is not self._extend or not self._missing:
            return updated_node
        names = list(updated_node.names)
        opened = updated_node.lpar.whitespace_after if updated_node.lpar else None
        close = updated_node.rpar.whitespace_before if updated_node.rpar else None
        for name in self._missing:
            names, close = append_item(names, cst.ImportAlias(name=cst.Name(name)), opened, close)
        rpar = updated_node.rpar.with_changes(whitespace_before=close) if updated_node.rpar else None
        self._missing = []
        return updated_node.with_changes(names=names, rpar=rpar)

    def leave_List(self, original_node: cst.List, updated_node: cst.List) -> cst.List:
        return self._export(original_node, updated_node, "lbracket", "rbracket")

    def leave_Tuple(self, original_node: cst.Tuple, updated_node: cst.Tuple) -> cst.Tuple:
        if original_node is not self._all or not updated_node.lpar:
            return updated_node
        return self._export(original_node, updated_node, "lpar", "rpar")

    def _export(self, original_node, updated_node, opener: str, closer: str):
        if original_node is not self._all or not self._unexported:
            return updated_node
        lb, rb = getattr(updated_node, opener), getattr(updated_node, closer)
        if isinstance(lb, (list, tuple)):  # Tuple.lpar / rpar are sequences
            lb, rb = lb[0], rb[-1]
        quote = string_quote(list(updated_node.elements), default='"')
        elements, close = list(updated_node.elements), rb.whitespace_before
        for name in self._unexported:
            new = cst.Element(cst.SimpleString(f"{quote}{name}{quote}"))
            elements, close = append_item(elements, new, lb.whitespace_after, close)
        rb = rb.with_changes(whitespace_before=close)
        self._unexported = []
        if closer == "rpar":
            return updated_node.with_changes(elements=elements, rpar=[*updated_node.rpar[:-1], rb])
        return updated_node.with_changes(elements=elements, **{closer: rb})

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if not self._missing:
            return updated_node
        statement = cst.parse_statement(self._import_text(), config=updated_node.config_for_parsing)
        body = list(updated_node.body)
        if self._after is not None:
            index = next(i for i, s in enumerate(original_node.body) if s is self._after) + 1
        else:  # no imports at all: put it before __all__, or at the end
            index = next(
                (i for i, s in enumerate(original_node.body) if m.findall(s, m.Name("__all__"))), len(body)
            )
        return updated_node.with_changes(body=[*body[:index], statement, *body[index:]])

    def _import_text(self) -> str:
        """The new import, laid out like the existing backbone imports (parenthesised one per line or not)."""
        target = f"from {self._prefix}{self.backbone_module} import"
        if self._style is not None and self._style.lpar is not None:
            ws = self._style.lpar.whitespace_after
            indent = ws.last_line.value if isinstance(ws, cst.ParenthesizedWhitespace) else ""
            if indent:
                lines = "".join(f"{indent}{n},\n" for n in self._missing)
                return f"{target} (\n{lines})\n"
        return f"{target} {', '.join(self._missing)}\n"


def register_backbone_module(
    source: str,
    module: str,
    names: list[str],
    *,
    package: str = BACKBONE_PACKAGE,
    filename: str = "__init__.py",
) -> str:
    """Return ``source`` with ``from <package>.<module> import names...`` added and ``names`` in ``__all__``.

    The import follows the file's style: absolute ``nvidia_tao_pytorch.cv.backbone_v2.<module>`` imports
    (what TAO 7.3 uses) unless the file only uses relative ``.module`` imports.
    """
    parse_source(source, filename)
    return run_codemod(
        RegisterBackboneModule(CodemodContext(filename=filename), module, names, package), source
    )
