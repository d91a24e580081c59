"""The compiler's passes, in the order they run. Each is ``pass_(graph, context) -> graph`` in its own module."""

from collections.abc import Callable

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.passes.engine_choice import choose_engine
from sparkflow.compiler.passes.fuse import fuse
from sparkflow.compiler.passes.layout import layout
from sparkflow.compiler.passes.limits import limits
from sparkflow.compiler.passes.place import place
from sparkflow.compiler.passes.split import split
from sparkflow.compiler.passes.validate import validate

Pass = Callable[[nx.DiGraph, Context], nx.DiGraph]
PASSES: tuple[Pass, ...] = (validate, choose_engine, place, split, layout, fuse, limits)

__all__ = ["PASSES", "Pass"]
