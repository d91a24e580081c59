"""Find pipelines from what a user types: a file path (``examples/wordcount/pipeline.py``), a module
(``examples.wordcount.pipeline``) or one pipeline (``module:attr`` / ``path.py:attr``).

Used by the CLI and by the runtime (which loads the module fixed at deploy time), so it stays light.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable
from types import ModuleType

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import DefinitionError, Origin, SparkflowError
from sparkflow.runtime.failures import import_failure

_SOURCE_DIGEST = "__sparkflow_source_digest__"


def load_pipelines(spec: str) -> list[Pipeline]:
    """All pipelines ``spec`` names, in the order they are declared."""
    target, _, attr = spec.partition(":") if not _is_windows_drive(spec) else (spec, "", "")
    module = _load_module(target)
    if attr:
        found = getattr(module, attr, None)
        if not isinstance(found, Pipeline):
            raise SparkflowError(f"{spec}: {attr!r} is not a pipeline (decorate a function with @sf.pipeline)")
        return [found]
    pipelines = {id(value): value for value in vars(module).values() if isinstance(value, Pipeline)}
    if not pipelines:
        raise SparkflowError(f"{target}: no pipeline found; decorate a function with @sf.pipeline")
    return sorted(pipelines.values(), key=lambda p: (p.origin.file, p.origin.line))


def load_pipeline(spec: str, name: str | None = None) -> Pipeline:
    """The one pipeline ``spec`` names (or the one called ``name`` among several)."""
    pipelines = load_pipelines(spec)
    if name is not None:
        for pipeline in pipelines:
            if pipeline.name == name:
                return pipeline
        raise SparkflowError(f"{spec}: no pipeline named {name!r} (found: {', '.join(p.name for p in pipelines)})")
    if len(pipelines) > 1:
        names = ", ".join(p.name for p in pipelines)
        raise SparkflowError(f"{spec} holds several pipelines ({names}): name one as {spec}:<attribute>")
    return pipelines[0]


# The DSL's functions, by the name Python's TypeError gives them ("stage() got an unexpected keyword argument").
_DSL = {
    "stage": "sparkflow.dsl.stage",
    "source": "sparkflow.dsl.source",
    "pipeline": "sparkflow.dsl.pipeline",
    "sink": "sparkflow.dsl.sink",
}
_UNEXPECTED = re.compile(r"^(\w+)\(\) got an unexpected keyword argument '(\w+)'$")


def dsl_keyword_mistake(error: BaseException) -> DefinitionError | None:
    """A keyword that ``sf.stage``, ``sf.source``, ``sf.sink`` or ``sf.pipeline`` does not take, as a
    :class:`DefinitionError` naming the user's line and the nearest keyword it does take; None for anything else.

    The DSL's signatures stay exact (editors and mypy flag the typo too), so Python raises the TypeError before
    sparkflow runs: it is translated here, where the pipeline's module is loaded.
    """
    import difflib
    import inspect

    match = _UNEXPECTED.match(str(error)) if isinstance(error, TypeError) else None
    if match is None or match.group(1) not in _DSL:
        return None
    function, keyword = match.groups()
    declared = inspect.signature(getattr(importlib.import_module(_DSL[function]), function)).parameters
    known = [name for name, item in declared.items() if item.kind is inspect.Parameter.KEYWORD_ONLY]
    close = difflib.get_close_matches(keyword, known, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}=? " if close else ""
    frames = traceback.extract_tb(error.__traceback__)
    user = [frame for frame in frames if frame.filename != __file__]
    origin = Origin(user[-1].filename, user[-1].lineno or 0) if user else None
    return DefinitionError(
        f"sf.{function}() has no keyword {keyword}=: {hint}(it takes: {', '.join(f'{name}=' for name in known)})",
        origin,
    )


# PySpark errors of code that needs a live session: a module-level ``@F.udf("string")`` parses its DDL return type
# with one, classic and Connect alike.
_NEEDS_SESSION = ("SESSION_OR_CONTEXT_NOT_EXISTS", "NO_ACTIVE_OR_DEFAULT_SESSION")


def _needs_session(error: BaseException) -> bool:
    condition = getattr(error, "getCondition", None)
    return callable(condition) and condition() in _NEEDS_SESSION


def _importing(load: Callable[[], ModuleType]) -> ModuleType:
    """``load()``, once more with this process's engine session started when the module's code needed one."""
    try:
        return load()
    except Exception as error:
        if not _needs_session(error):
            raise
    from sparkflow.runtime import engines

    engines.session_for_import()
    return load()


def _is_windows_drive(spec: str) -> bool:
    return len(spec) > 2 and spec[1] == ":" and spec[2] in "\\/"


def _load_module(target: str) -> ModuleType:
    if target.endswith(".py") or os.sep in target or "/" in target:
        return _importing(lambda: _load_file(target))
    try:
        return _importing(lambda: importlib.import_module(target))
    except ModuleNotFoundError as error:
        if error.name is None or not target.startswith(error.name):
            raise _reported(error, target) from error  # a module the pipeline's own module imports is missing
        raise SparkflowError(f"cannot import {target!r}: {error}; pass a file path or an importable module") from error
    except Exception as error:
        mistake = dsl_keyword_mistake(error)
        if mistake is not None:
            raise mistake from None
        reported = _reported(error, target)
        if reported is error:
            raise
        raise reported from error


def _reported(error: BaseException, target: str) -> BaseException:
    """``error``, raised importing the pipeline module ``target``, as :func:`import_failure` reports it."""
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        spec = None
    return import_failure(error, getattr(spec, "origin", None) or target)


def _load_file(path: str) -> ModuleType:
    absolute = os.path.abspath(path)
    if not os.path.isfile(absolute):
        raise SparkflowError(f"{path}: no such pipeline file")
    # A stable module name per file: the same file loaded twice is the same module, and Spark's workers can
    # be told to pickle its functions by value (see the Spark engine). A file edited since it was loaded is
    # loaded again, so a long-lived process (tests, a notebook) never compiles stale code.
    digest = hashlib.sha1(absolute.encode()).hexdigest()[:10]
    name = f"sparkflow_user_{os.path.splitext(os.path.basename(absolute))[0]}_{digest}"
    with open(absolute, "rb") as handle:
        source = handle.read()
    source_digest = hashlib.sha1(source).hexdigest()
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, _SOURCE_DIGEST, None) == source_digest:
        return loaded
    spec = importlib.util.spec_from_file_location(name, absolute)
    if spec is None or spec.loader is None:
        raise SparkflowError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _SOURCE_DIGEST, source_digest)
    folder = os.path.dirname(absolute)
    sys.path.insert(0, folder)  # so the pipeline can import modules that sit beside it
    sys.modules[name] = module
    try:
        # Compiled from the bytes just read, not through the loader: a cached .pyc is validated by mtime and
        # size only, so an edit within the same second that keeps the size would run the old code.
        exec(compile(source, absolute, "exec"), module.__dict__)
    except BaseException as error:
        del sys.modules[name]  # a half-imported module must not be found by the next load
        mistake = dsl_keyword_mistake(error)
        if mistake is not None:
            raise mistake from None
        if _needs_session(error):
            raise  # loaded again once the engine's session is up (see _importing)
        reported = import_failure(error, absolute)
        if reported is error:
            raise
        raise reported from error
    finally:
        sys.path.remove(folder)
    return module
