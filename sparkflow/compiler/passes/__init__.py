"""The compiler's passes, in the order they run. Each is ``pass_(graph, context) -> graph`` in its own module."""

from sparkflow.compiler.passes.fuse import fuse
from sparkflow.compiler.passes.layout import layout
from sparkflow.compiler.passes.limits import limits
from sparkflow.compiler.passes.place import place
from sparkflow.compiler.passes.split import split
from sparkflow.compiler.passes.validate import validate

PASSES = (validate, place, split, layout, fuse, limits)

__all__ = ["PASSES"]
