"""When a stage's own code fails: the error a Python user expects, and whether another attempt may help.

A failure inside the user's stage function — its own exception, a Spark ``AnalysisException`` for a column that
does not exist, a DuckDB binder error, an exception raised in a UDF while Spark evaluates the output — becomes a
:class:`StageError`: the exception's type and message, and the frames of the user's own files (file, line,
function, source line), formatted as Python formats a traceback, without sparkflow's, PySpark's, py4j's, sqlframe's,
DuckDB's or the JVM's frames. Its text is what the run's table, ``--json``, the log lines, the Lambda error (and so
the state machine's failure cause) and the HTTP answer show.

Retrying the same code on the same input fails the same way, so a ``StageError`` is final (see
:data:`sparkflow.runtime.protocol.FINAL_ERRORS`): the state machines, the container and HTTP entries and
``sparkflow run`` do not retry it. A stage may declare exceptions of its own that another attempt may cure
(``@sf.stage(retry_on=(ConnectionError,))``): those become a :class:`RetryableStageError`, retried up to the stage's
``retries=`` like a storage error. Failures of the engine itself (a lost JVM, memory) are not the user's: they keep
their own class and are retried.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import Any

from sparkflow.errors import Origin, SparkflowError


@dataclass(frozen=True)
class Frame:
    """One frame of the user's code on the failure's way."""

    file: str
    line: int
    function: str
    code: str

    def render(self) -> str:
        text = f'  File "{self.file}", line {self.line}, in {self.function}'
        return f"{text}\n    {self.code}" if self.code else text

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function, "code": self.code}


class StageError(SparkflowError, RuntimeError):
    """The stage's own code failed; final: another attempt of the same code on the same input fails the same way.

    Its text is the failure as a Python traceback of the user's frames only::

        stage 'top' failed: ValueError: boom
        Traceback (most recent call last, your code only):
          File "pipeline.py", line 33, in top
            raise ValueError("boom")
        ValueError: boom

    Attributes:
        kind: the original exception's type (``ValueError``, ``AnalysisException``, ``BinderException``).
        detail: its message (for Spark errors: the error class and the message, without the JVM's plan).
        frames: the user's frames, outermost first.
    """

    def __init__(
        self,
        message: str,
        origin: Origin | None = None,
        *,
        kind: str = "",
        detail: str = "",
        frames: tuple[Frame, ...] = (),
    ) -> None:
        self.kind, self.detail, self.frames = kind, detail, frames
        super().__init__(message, origin)

    def __str__(self) -> str:
        return self.message


class RetryableStageError(StageError):
    """A failure of the stage's own code that the stage declared worth another attempt (``retry_on=``)."""


_BLAMED = "_sparkflow_stage"
# Failures of the engine or the machine, not of the user's code: they keep their class, and are retried.
_ENGINE_FAILURES = ("Py4JNetworkError", "OutOfMemoryException", "InterruptException")
_ENGINE_MESSAGES = (
    "java.lang.OutOfMemoryError",
    "Answer from Java side is empty",
    "Error while sending or receiving",
    "SparkContext was shut down",
    "Cannot call methods on a stopped SparkContext",
)


@contextmanager
def running(stage: Any, evaluating: bool = False) -> Iterator[None]:
    """Code of ``stage`` runs inside: its function, or (``evaluating``) the engine evaluating what it returned. An
    exception that leaves is marked as the stage's (see :func:`blamed`) unless it is sparkflow's own or the engine's
    failure; while evaluating, only the engine's query errors are (an analysis error, a UDF's exception, a value
    that does not convert), not a failure to write or a lost worker."""
    try:
        yield
    except Exception as error:
        ours = not isinstance(error, SparkflowError) and not engine_failure(error)
        if ours and (not evaluating or _query_error(error)):
            with suppress(AttributeError):  # an exception type without attributes is reported as it is
                setattr(error, _BLAMED, stage)
        raise


# Errors of DuckDB that are the machine's, not the query's.
_DUCKDB_MACHINE_ERRORS = ("IOException", "OutOfMemoryException", "InterruptException", "ConnectionException")


def _query_error(error: BaseException) -> bool:
    """Whether the engine raised ``error`` about the query it evaluated: PySpark's errors (analysis, a UDF's
    exception in Spark's Python worker, a runtime error of a function), DuckDB's and sqlframe's (not their I/O)."""
    module = type(error).__module__
    if module.startswith(("pyspark", "sqlframe")):
        return True
    return module.startswith(("duckdb", "_duckdb")) and type(error).__name__ not in _DUCKDB_MACHINE_ERRORS


def blamed(error: BaseException) -> Any:
    """The stage whose code raised ``error`` (see :func:`running`), or None."""
    return getattr(error, _BLAMED, None)


def engine_failure(error: BaseException) -> bool:
    """Whether ``error`` is the engine's or the machine's failure (a lost JVM, memory), not the user's code's."""
    if isinstance(error, MemoryError | ConnectionError) or type(error).__name__ in _ENGINE_FAILURES:
        return True
    text = str(error)
    return any(marker in text for marker in _ENGINE_MESSAGES)


def stage_failure(error: BaseException, stage: Any) -> StageError:
    """``error``, raised by the code of ``stage`` (its function, or Spark evaluating what it returned), as the
    :class:`StageError` to report (a :class:`RetryableStageError` when the stage's ``retry_on=`` covers it)."""
    kind, detail = describe(error)
    frames = user_frames(error) or _mentioning(stage, detail)
    origin = Origin(frames[-1].file, frames[-1].line) if frames else stage.origin
    lines = [f"stage {stage.name!r} failed: {kind}: {detail}"]
    if frames:
        lines.append("Traceback (most recent call last, your code only):")
        lines += [frame.render() for frame in frames]
        if not user_frames(error):  # found by the column it names: the engine raised it later, evaluating the plan
            lines.append("  (raised when the engine evaluated the DataFrame the stage returned)")
    else:
        lines.append(f"  (raised while the engine evaluated the DataFrame the stage returned; stage at {stage.origin})")
    lines.append(f"{kind}: {detail}")
    retry_on = getattr(stage.options, "retry_on", ())
    cls = RetryableStageError if retry_on and isinstance(error, retry_on) else StageError
    return cls("\n".join(lines), origin, kind=kind, detail=detail, frames=frames)


_NAMED = re.compile(r'(?:column|name) ["`]([^"`]+)["`]')


def _mentioning(stage: Any, detail: str) -> tuple[Frame, ...]:
    """For an error raised while the engine evaluated a lazy DataFrame (DuckDB through sqlframe binds columns only
    then), the line of the stage's function that names the column the error names, if exactly one does."""
    import inspect

    named = _NAMED.search(detail)
    function = getattr(stage, "fn", None)
    if named is None or function is None:
        return ()
    try:
        lines, first = inspect.getsourcelines(function)
        file = inspect.getsourcefile(function) or ""
    except (OSError, TypeError):
        return ()
    literals = (f'"{named.group(1)}"', f"'{named.group(1)}'")
    found = [(first + offset, text) for offset, text in enumerate(lines) if any(item in text for item in literals)]
    if len(found) != 1:
        return ()
    line, text = found[0]
    return (Frame(file, line, getattr(function, "__name__", "?"), text.strip()),)


def import_failure(error: BaseException, module_file: str) -> BaseException:
    """What to report for ``error``, raised while the pipeline module ``module_file`` was imported, as for a stage's
    own failure: an API the process's engine lacks is an :class:`~sparkflow.errors.EngineUnsupported` naming it and
    the user's line; the engine's or the machine's failure stays as it is (another attempt may work); any other
    exception of the user's code is a :class:`StageError` with the user's frames (final: importing the same code
    fails the same way)."""
    from sparkflow.errors import EngineUnsupported
    from sparkflow.runtime import engines

    if not isinstance(error, Exception) or isinstance(error, SparkflowError) or engine_failure(error):
        return error
    frames = user_frames(error)
    origin = Origin(frames[-1].file, frames[-1].line) if frames else Origin(module_file, 1)
    engine = engines.prepared()
    api = engines.unsupported_api(engine, error) if engine else None
    if api is not None:
        return EngineUnsupported(
            f"the {engine} engine cannot run {api}, which the pipeline module uses while it is imported "
            f'({first_line(error)}); run the pipeline\'s stages on Spark: @sf.pipeline(engine="spark"), or '
            "`sparkflow run --engine spark`",
            origin,
        )
    kind, detail = describe(error)
    lines = [f"the pipeline module {module_file} failed while it was imported: {kind}: {detail}"]
    if frames:
        lines.append("Traceback (most recent call last, your code only):")
        lines += [frame.render() for frame in frames]
    lines.append(f"{kind}: {detail}")
    return StageError("\n".join(lines), origin, kind=kind, detail=detail, frames=frames)


def log_fields(error: BaseException) -> dict[str, Any]:
    """What a log line says of a failure: the error's class, its text (a stage's own failure: the traceback of the
    user's frames) and, for a stage's own failure, its type, message and frames as fields to filter on."""
    fields: dict[str, Any] = {"error": type(error).__name__, "detail": str(error)[:4000]}
    if isinstance(error, StageError):
        fields.update({"kind": error.kind, "message_text": error.detail})
        fields["frames"] = [f"{frame.file}:{frame.line} in {frame.function}" for frame in error.frames]
    return fields


def summary(error: BaseException, node: str) -> str:
    """The whole text a run's summary shows for a failed node: a stage's own failure as its traceback, anything
    else as ``<class>: <message>``, prefixed with ``stage '<node>' failed:`` where the message does not name it."""
    if isinstance(error, StageError):
        return str(error)
    text = f"{type(error).__name__}: {error}"
    return text if f"stage {node!r}" in text else f"stage {node!r} failed: {text}"


def describe(error: BaseException) -> tuple[str, str]:
    """The type name users know and the message, without engine internals: a Spark error's class and message
    (not the JVM stack or the analyzed plan), a UDF's own exception (not the Python worker's traceback)."""
    kind = type(error).__name__
    text = str(error).strip()
    # getErrorClass only where getCondition is missing: PySpark 4 warns (on the terminal) that it is deprecated.
    error_class = _call(error, "getCondition") if hasattr(error, "getCondition") else _call(error, "getErrorClass")
    if kind == "PythonException":  # a UDF failed in Spark's Python worker: its last traceback line is the error
        last = [line for line in text.splitlines() if line.strip() and not line.startswith((" ", "\t"))]
        if last:
            inner, _, message = last[-1].partition(": ")
            if inner.isidentifier():
                return inner, message.strip()
    first = text.splitlines()[0] if text else kind
    if type(error).__module__.startswith(("duckdb", "_duckdb")):
        # DuckDB's first paragraph holds its suggestions ("Candidate bindings: ..."); the rest quotes the SQL that
        # sqlframe generated, which is not the user's code.
        first = " ".join(line.strip() for line in text.split("\n\n")[0].splitlines())
    if error_class:
        first = re.sub(r"\s*SQLSTATE: \w+;?\s*$", "", first.rstrip(";")).strip()
        if not first.startswith("["):
            first = f"[{error_class}] {first}"
    return kind, first


def user_frames(error: BaseException) -> tuple[Frame, ...]:
    """The frames of the user's own files on ``error``'s way (its traceback, and file/line mentions in the text of
    an exception from Spark's Python workers), outermost first."""
    frames = [frame for frame in _traceback_frames(error.__traceback__) if is_user_file(frame.file)]
    if not frames:
        frames = [frame for frame in _text_frames(str(error)) if is_user_file(frame.file)]
    return tuple(frames)


def is_user_file(path: str) -> bool:
    """Whether ``path`` is the user's code: not sparkflow, not an installed package, not the standard library."""
    if not path or path.startswith("<"):
        return False
    real = os.path.realpath(path)
    return not any(real == root or real.startswith(root + os.sep) for root in _library_roots())


@cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the sparkflow package
    roots.update(path for path in sys.path if path.endswith(("site-packages", "dist-packages")))
    return tuple(sorted(os.path.realpath(root) for root in roots if root))


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (its type's name when it has none): what a one-line report shows."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def tracebacks(tb: TracebackType | None) -> list[TracebackType]:
    """The entries of a traceback, outermost first."""
    found = []
    while tb is not None:
        found.append(tb)
        tb = tb.tb_next
    return found


def line_in(error: BaseException, file: str) -> Origin | None:
    """The last line of ``file`` on ``error``'s way (for an engine's refusal: where the user's stage made the call
    the engine cannot run), or None."""
    lines = [tb.tb_lineno for tb in tracebacks(error.__traceback__) if tb.tb_frame.f_code.co_filename == file]
    return Origin(file, lines[-1]) if lines else None


def _traceback_frames(tb: TracebackType | None) -> list[Frame]:
    found: list[Frame] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        line = tb.tb_lineno
        found.append(Frame(code.co_filename, line, code.co_name, linecache.getline(code.co_filename, line).strip()))
        tb = tb.tb_next
    return found


_TEXT_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')


def _text_frames(text: str) -> list[Frame]:
    found: list[Frame] = []
    for match in _TEXT_FRAME.finditer(text):
        file, line = match["file"], int(match["line"])
        found.append(Frame(file, line, match["function"], linecache.getline(file, line).strip()))
    return found


def _call(error: BaseException, method: str) -> str | None:
    function = getattr(error, method, None)
    if not callable(function):
        return None
    try:
        value = function()
    except Exception:
        return None
    return value if isinstance(value, str) and value else None
