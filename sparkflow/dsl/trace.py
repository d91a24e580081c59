"""Tracing: calling a pipeline function records its stage calls into an explicit :class:`Trace`.

The active trace lives in a context variable that is set only while one pipeline function runs
(:func:`tracing`), so nothing global is patched and two builds never see each other's calls.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sparkflow.dsl.param import Param
from sparkflow.dsl.source import Source
from sparkflow.errors import DefinitionError, Origin, SparkflowError

if TYPE_CHECKING:
    from sparkflow.dsl.sink import Sink
    from sparkflow.dsl.stage import Stage

_ACTIVE: ContextVar[Trace | None] = ContextVar("sparkflow_trace", default=None)


def current() -> Trace | None:
    """The trace being recorded in this context, if any."""
    return _ACTIVE.get()


@contextmanager
def tracing(trace: Trace) -> Iterator[Trace]:
    token = _ACTIVE.set(trace)
    try:
        yield trace
    finally:
        _ACTIVE.reset(token)


@dataclass(frozen=True)
class Output:
    """The placeholder a stage call returns while tracing: the output of node ``node_id``."""

    node_id: str
    origin: Origin

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise DefinitionError(
            f"the output of stage {self.node_id!r} is a placeholder while the pipeline is traced, so "
            f".{attribute} cannot be used here: do DataFrame work inside a @sf.stage function",
            self.origin,
        )


@dataclass(frozen=True)
class StageCall:
    """One call of a stage inside a pipeline: a node of the graph.

    Attributes:
        node_id: unique in the pipeline: the stage name, with ``_2``, ``_3`` for further calls.
        stage: the called stage; when the pipeline's ``engine=`` applies to it, a copy with that engine.
        inputs: (parameter name, upstream node id) in the order of the stage's parameters.
        origin: where in the pipeline function the stage was called.
    """

    node_id: str
    stage: Stage[Any, Any]
    inputs: tuple[tuple[str, str], ...]
    origin: Origin


@dataclass
class Trace:
    """What one run of a pipeline function recorded.

    Attributes:
        engine: the pipeline's ``engine=``: each recorded call's stage has it as its engine unless the stage
            declares its own (see :meth:`Stage.in_pipeline`), so everything downstream reads one resolved engine.
    """

    engine: str | None = None
    sources: dict[str, Source] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)  # declared in the pipeline function or passed to a stage
    calls: dict[str, StageCall] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    sinks: dict[str, tuple[Sink, str, Origin]] = field(default_factory=dict)  # name -> (sink, node, where published)
    problems: list[SparkflowError] = field(default_factory=list)
    _stages_by_name: dict[str, Stage[Any, Any]] = field(default_factory=dict)

    def record(self, stage: Stage[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], depth: int) -> Output:
        """Record a call of ``stage`` made ``depth`` frames up, and return the placeholder of its output."""
        caller = sys._getframe(depth)
        origin = Origin(caller.f_code.co_filename, caller.f_lineno)
        node_id = self._node_id(stage, origin)
        inputs: list[tuple[str, str]] = []
        try:
            bound = stage.signature.bind(*args, **kwargs)
        except TypeError as error:
            self.problems.append(DefinitionError(_call_mistake(stage, args, kwargs, error), origin))
        else:
            for param, value in bound.arguments.items():
                kind = stage.signature.parameters[param].kind
                values = value if kind is inspect.Parameter.VAR_POSITIONAL else (value,)
                for index, item in enumerate(values):
                    label = f"{param}{index}" if kind is inspect.Parameter.VAR_POSITIONAL else param
                    upstream = self._input_node(stage, label, item, origin)
                    if upstream is not None:
                        inputs.append((label, upstream))
        self.calls[node_id] = StageCall(node_id, stage.in_pipeline(self.engine), tuple(inputs), origin)
        return Output(node_id, origin)

    def declare(self, param: Param) -> None:
        """Record a parameter declared while the pipeline function runs (one declared outside it is recorded
        when it is passed to a stage)."""
        known = self.params.setdefault(param.name, param)
        if known is not param:
            self.problems.append(
                DefinitionError(
                    f"two different parameters are named {param.name!r} (also at {known.origin}); rename one",
                    param.origin,
                )
            )

    def publish(self, sink: Sink, output: Any, origin: Origin) -> None:
        """Record that the pipeline publishes ``output`` to ``sink`` (called where the pipeline calls the sink)."""
        if not isinstance(output, Output) or output.node_id not in self.calls:
            what = (
                f"source {output.name!r}" if isinstance(output, Source) else f"{type(output).__name__} {_short(output)}"
            )
            self.problems.append(
                DefinitionError(f"sink {sink.name!r} is given {what}: pass it a stage's output", origin)
            )
            return
        known = self.sinks.get(sink.name)
        if known is not None:
            self.problems.append(
                DefinitionError(
                    f"sink {sink.name!r} is published to twice (also at {known[2]}): a sink takes one output; "
                    "declare another sink for the second",
                    origin,
                )
            )
            return
        self.sinks[sink.name] = (sink, output.node_id, origin)

    def finish(self, result: Any, origin: Origin, pipeline_name: str) -> None:
        """Record what the pipeline function returned: its outputs."""
        items: list[Any]
        if isinstance(result, dict):
            items = list(result.values())
        elif isinstance(result, (tuple, list)):
            items = list(result)
        elif result is None:
            items = []
        else:
            items = [result]
        outputs: list[str] = []
        for item in items:
            if isinstance(item, Output) and item.node_id in self.calls:
                outputs.append(item.node_id)
            elif isinstance(item, Source):
                self.problems.append(
                    DefinitionError(f"pipeline {pipeline_name!r} returns source {item.name!r} unchanged", origin)
                )
            else:
                self.problems.append(
                    DefinitionError(
                        f"pipeline {pipeline_name!r} returns {type(item).__name__} {item!r}: return stage outputs",
                        origin,
                    )
                )
        if not items:
            self.problems.append(
                DefinitionError(
                    f"pipeline {pipeline_name!r} returns nothing: return the output of its last stage "
                    "(or a tuple or dict of stage outputs)",
                    origin,
                )
            )
        self.outputs = tuple(dict.fromkeys(outputs))
        for name, param in self.params.items():
            if name in self.sources or name in self._stages_by_name or name in self.sinks:
                self.problems.append(
                    DefinitionError(
                        f"parameter {name!r} has the same name as a source, stage or sink: rename one", param.origin
                    )
                )
        for name, (sink, node_id, _) in self.sinks.items():
            if name in self.sources or name in self._stages_by_name:
                self.problems.append(
                    DefinitionError(f"sink {name!r} has the same name as a source or stage: rename one", sink.origin)
                )
            if self.calls[node_id].stage.options.output == "value":
                self.problems.append(
                    DefinitionError(
                        f"sink {name!r} is given the value of stage {node_id!r}: a sink publishes a table, so give "
                        "it a stage that returns a DataFrame",
                        sink.origin,
                    )
                )

    def _node_id(self, stage: Stage[Any, Any], origin: Origin) -> str:
        known = self._stages_by_name.setdefault(stage.name, stage)
        if known is not stage:
            self.problems.append(
                DefinitionError(
                    f"duplicate stage name {stage.name!r}: also declared at {known.origin}; "
                    "rename one of the functions or pass name= to @sf.stage",
                    stage.origin,
                )
            )
        if stage.name in self.sources:
            self.problems.append(
                DefinitionError(f"stage {stage.name!r} has the same name as a source: rename one", stage.origin)
            )
        node_id, count = stage.name, 1
        while node_id in self.calls or node_id in self.sources or node_id in self.params:
            count += 1
            node_id = f"{stage.name}_{count}"
        return node_id

    def _input_node(self, stage: Stage[Any, Any], label: str, item: Any, origin: Origin) -> str | None:
        if isinstance(item, Output):
            if item.node_id not in self.calls:
                self.problems.append(
                    DefinitionError(
                        f"input {label!r} of stage {stage.name!r} comes from another pipeline's stage {item.node_id!r}",
                        origin,
                    )
                )
                return None
            return item.node_id
        if isinstance(item, Source):
            if item.name in self._stages_by_name:
                self.problems.append(
                    DefinitionError(f"source {item.name!r} has the same name as a stage: rename one", item.origin)
                )
                return None
            known = self.sources.setdefault(item.name, item)
            if known is not item:
                self.problems.append(
                    DefinitionError(
                        f"two different sources are named {item.name!r} (also at {known.origin}); rename one",
                        item.origin,
                    )
                )
            return item.name
        if isinstance(item, Param):
            self.declare(item)
            return item.name if self.params[item.name] is item else None
        self.problems.append(
            DefinitionError(
                f"input {label!r} of stage {stage.name!r} is neither a source, a stage output nor a parameter "
                f"(got {type(item).__name__} {_short(item)}): pass sf.source(...), another stage's output, or "
                f"a value each run chooses: sf.param({label!r}, default=..., type=...)",
                origin,
            )
        )
        return None


def _call_mistake(stage: Stage[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], error: TypeError) -> str:
    """What is wrong with a call of ``stage`` that does not fit its parameters, naming the input at fault."""
    import difflib

    params = list(stage.signature.parameters)
    takes = f"{len(params)} input{'' if len(params) == 1 else 's'} ({', '.join(params)})"
    text = str(error)
    unexpected = [name for name in kwargs if name not in params]
    if unexpected:  # named before what is missing: a misspelt name is usually why an input is missing
        name = unexpected[0]
        close = difflib.get_close_matches(name, params, n=1, cutoff=0.5)
        hint = f": did you mean {close[0]!r}?" if close else ""
        return f"stage {stage.name!r} has no input {name!r} (it takes {takes}){hint}"
    missing = re.search(r"missing a required argument: '([^']+)'", text)
    if missing:
        named = ", ".join(repr(name) for name in kwargs)
        passed = f"; it is given {named}" if named else ""
        return (
            f"stage {stage.name!r} is called without its input {missing.group(1)!r} (it takes {takes}{passed}): "
            "pass one source or stage output per parameter"
        )
    given = len(args) + len(kwargs)
    return (
        f"stage {stage.name!r} takes {takes} but is called with {given} ({text}): "
        "pass one source or stage output per parameter"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
