"""The suite's entries: the doctest examples of the installed pyspark's own docstrings, one entry per documented API.

The docstrings are read from pyspark's source files as installed (found without importing pyspark: a duckdb process
has no real ``pyspark.sql``), with :mod:`ast`, and their examples parsed with :class:`doctest.DocTestParser`, in
order. An API is a public function of ``pyspark/sql/functions/builtin.py`` (``functions.date_add``), a public method
or property of one of the classes of :data:`SOURCES` (``DataFrame.dropDuplicates``), or the class itself
(``Window``). Examples marked ``# doctest: +SKIP`` are left out, as pyspark's own doctest run leaves them out (they
need files, the network, or give random output); an API whose examples are all skipped is not an entry.
"""

from __future__ import annotations

import ast
import doctest
import importlib.machinery
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """Where the docstrings of one family of APIs live.

    Attributes:
        path: the file, relative to the installed ``pyspark`` package.
        owner: the class whose methods are the APIs, or None for the module's functions.
        label: the entries' prefix (``functions``, ``DataFrame``).
    """

    path: str
    owner: str | None
    label: str


SOURCES: tuple[Source, ...] = (
    Source("sql/functions/builtin.py", None, "functions"),
    Source("sql/dataframe.py", "DataFrame", "DataFrame"),
    Source("sql/group.py", "GroupedData", "GroupedData"),
    Source("sql/column.py", "Column", "Column"),
    Source("sql/window.py", "Window", "Window"),
)


@dataclass(frozen=True)
class Example:
    """One ``>>>`` example.

    Attributes:
        source: its Python source (continuation lines joined, as doctest runs it).
        line: its line in the pyspark file (1-based).
        raises: whether the docs show it raising (a traceback as its output).
    """

    source: str
    line: int
    raises: bool


@dataclass(frozen=True)
class Entry:
    """One documented API and its examples, which run in order in one namespace.

    Attributes:
        name: ``<label>.<api>``, e.g. ``functions.date_add``.
        path: the pyspark file, relative to the ``pyspark`` package.
        line: the line of the API's definition.
    """

    name: str
    path: str
    line: int
    examples: tuple[Example, ...]

    @property
    def where(self) -> str:
        """``pyspark/<path>:<line>``, for reports."""
        return f"pyspark/{self.path}:{self.line}"


def pyspark_root() -> Path:
    """The installed ``pyspark`` package's folder (pyspark itself is not imported)."""
    spec = importlib.machinery.PathFinder.find_spec("pyspark")  # sys.path, not sys.modules (sqlframe's stand-in)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pyspark is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def entries() -> tuple[Entry, ...]:
    """Every entry of every source, sorted by name."""
    found = [entry for source in SOURCES for entry in source_entries(source, pyspark_root())]
    return tuple(sorted(found, key=lambda entry: entry.name))


def by_name() -> dict[str, Entry]:
    """:func:`entries` by name."""
    return {entry.name: entry for entry in entries()}


def source_entries(source: Source, root: Path) -> list[Entry]:
    """The entries of one source file, in file order."""
    tree = ast.parse((root / source.path).read_text(encoding="utf-8"))
    definitions: list[ast.FunctionDef | ast.ClassDef] = []
    body: list[ast.stmt] = tree.body
    if source.owner is not None:
        owner = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == source.owner)
        definitions.append(owner)
        body = owner.body
    definitions += [node for node in body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
    found: dict[str, Entry] = {}
    for node in definitions:
        name = source.label if isinstance(node, ast.ClassDef) else f"{source.label}.{node.name}"
        examples = _examples(node)
        if examples and name not in found:  # an overloaded API: the definition with the docstring
            found[name] = Entry(name, source.path, node.lineno, examples)
    return list(found.values())


def _examples(node: ast.FunctionDef | ast.ClassDef) -> tuple[Example, ...]:
    docstring = ast.get_docstring(node, clean=False)
    if not docstring or not node.body:
        return ()
    first_line = node.body[0].lineno  # the docstring's opening quotes
    parsed = doctest.DocTestParser().get_examples(docstring)
    return tuple(
        Example(example.source, first_line + example.lineno, example.exc_msg is not None)
        for example in parsed
        if not example.options.get(doctest.SKIP)
    )
