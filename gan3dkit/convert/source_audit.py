"""Static check of a persistence record's module source: what would run at import, found by parsing (never run).

gan3dkit never executes the source text that NVIDIA's persistence records carry; it only reads the weights. A
record whose source would *do* something when imported (a call at module or class level, in a decorator, a
default argument or an annotation; an import outside the packages EG3D's network files use) is still a sign of a
tampered file, so the converter refuses it with the line and the offending code.
"""

from __future__ import annotations

import ast

#: Top-level packages imported by EG3D's persisted network modules (networks_stylegan2, triplane,
#: superresolution, dual_discriminator, augment).
ALLOWED_IMPORT_ROOTS = frozenset(
    {"__future__", "numpy", "scipy", "torch", "torch_utils", "training", "dnnlib", "math", "copy", "typing",
     "camera_utils", "einops"}  # the last two: PoF3D's triplane_autopose.py
)
#: Decorators EG3D's modules use (resolved names); anything else is a call at import.
ALLOWED_DECORATORS = frozenset(
    {"persistence.persistent_class", "misc.profiled_function", "staticmethod", "classmethod", "property"}
)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


class _ImportTimeAudit:
    """Collect (line, text) of everything that would run at import beyond defining names."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.problems: list[tuple[int, str]] = []

    def _flag(self, node: ast.AST, why: str) -> None:
        text = (ast.get_source_segment(self.src, node) or type(node).__name__).splitlines()[0][:80]
        self.problems.append((getattr(node, "lineno", 0), f"{why}: {text}"))

    def expr(self, node: ast.AST | None) -> None:
        """An expression evaluated at import: calls, lambdas-with-calls are fine only inside functions."""
        if node is None:
            return
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Lambda, ast.GeneratorExp)):
                continue  # bodies run later; their own calls are not at import
            if isinstance(sub, ast.Call):
                self._flag(sub, "call at import")
                return
            if isinstance(sub, (ast.ListComp, ast.SetComp, ast.DictComp)):
                self._flag(sub, "comprehension at import")
                return

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.decorators(node.decorator_list)
        args = node.args
        for d in [*args.defaults, *args.kw_defaults]:
            self.expr(d)
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None:
                self.expr(a.annotation)
        self.expr(node.returns)

    def decorators(self, decorators: list[ast.expr]) -> None:
        for d in decorators:
            if _dotted(d) not in ALLOWED_DECORATORS:
                self._flag(d, "decorator runs at import")

    def body(self, stmts: list[ast.stmt], in_class: bool) -> None:
        for s in stmts:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function(s)
            elif isinstance(s, ast.ClassDef):
                self.decorators(s.decorator_list)
                for b in [*s.bases, *(k.value for k in s.keywords)]:
                    self.expr(b)
                self.body(s.body, in_class=True)
            elif isinstance(s, (ast.Import, ast.ImportFrom)):
                if isinstance(s, ast.ImportFrom) and s.level:
                    self._flag(s, "relative import")
                names = [s.module or ""] if isinstance(s, ast.ImportFrom) else [a.name for a in s.names]
                for n in names:
                    if n.split(".")[0] not in ALLOWED_IMPORT_ROOTS:
                        self._flag(s, f"import of {n!r}")
            elif isinstance(s, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                self.expr(s.value)
                if isinstance(s, ast.AnnAssign):
                    self.expr(s.annotation)
            elif isinstance(s, ast.Expr):
                self.expr(s.value)  # a docstring passes; a bare call is flagged
            elif isinstance(s, ast.Pass):
                continue
            else:
                self._flag(s, f"{type(s).__name__.lower()} statement at {'class' if in_class else 'module'} level")


def audit_module_source(src: str, class_name: str) -> list[str]:
    """Problems ('line N: ...') found in a record's module source; empty when it only defines names.

    Also reports a source that does not define ``class_name`` or does not parse.
    """
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError) as exc:
        return [f"the source does not parse ({exc.__class__.__name__}: {exc})"]
    audit = _ImportTimeAudit(src)
    audit.body(tree.body, in_class=False)
    problems = [f"line {line}: {text}" for line, text in audit.problems]
    if not any(isinstance(n, ast.ClassDef) and n.name == class_name for n in tree.body):
        problems.append(f"the source does not define class {class_name!r}")
    return problems
