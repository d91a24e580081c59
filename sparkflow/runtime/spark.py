"""The Spark engine: one local SparkSession per process, created on first use and kept for warm invocations.

The configuration is for short single-machine jobs (see docs/concepts/plan.md and docs/performance.md): no UI, few
shuffle partitions, no adaptive re-planning, loopback networking, the JIT and collector chosen from the first task's
input (:func:`jvm_tuning`), driver memory from the memory the Plan gives the task.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any

from sparkflow.engines import ENGINES
from sparkflow.errors import EnvironmentProblem
from sparkflow.runtime.protocol import ENGINE_LOG_VARIABLE

MINIMUM_JAVA = 17
_LOCK = threading.Lock()
_SESSION: Any = None


@cache
def java_version(java: str | None = None) -> int:
    """The major version of the Java that Spark will start, or an EnvironmentProblem saying what to install."""
    executable = java or _java_executable()
    try:
        completed = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EnvironmentProblem(
            f"cannot run Java ({executable}): {error}. Install Java {MINIMUM_JAVA} or newer "
            "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
        ) from error
    match = re.search(r'version "(\d+)(?:\.(\d+))?', completed.stderr + completed.stdout)
    if not match:
        raise EnvironmentProblem(f"cannot tell the version of Java at {executable}: {completed.stderr.strip()!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MINIMUM_JAVA:
        raise EnvironmentProblem(
            f"Java {major} at {executable} is too old: PySpark 4 needs Java {MINIMUM_JAVA} or newer "
            "(e.g. `apt-get install openjdk-17-jre-headless`, then set JAVA_HOME)"
        )
    return major


def _java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        if os.path.exists(candidate):
            return candidate
        raise EnvironmentProblem(
            f"JAVA_HOME is {home!r} but {candidate} does not exist: point JAVA_HOME at a Java {MINIMUM_JAVA}+ "
            "installation or unset it"
        )
    found = shutil.which("java")
    if not found:
        raise EnvironmentProblem(
            f"Java is not installed: PySpark needs Java {MINIMUM_JAVA} or newer "
            "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
        )
    return found


# At or above this much input the JVM runs with its optimising compiler (C2) and the parallel collector; below it,
# C1 only and the serial collector, which start fastest but run long tasks slower (figures: docs/performance.md).
LARGE_INPUT_BYTES = 32 * 1024 * 1024
_SMALL_INPUT_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
_LARGE_INPUT_JVM = "-XX:+UseParallelGC"
# A map task writes its rows into one folder per bucket: with a writer open per bucket Spark does not sort the
# chunk's rows by bucket first (faster: docs/performance.md). More buckets than this fall back to sorting.
_CONCURRENT_WRITERS = 64


def jvm_tuning(input_bytes: int) -> str:
    """The JVM's compiler and collector options for a process whose first task reads ``input_bytes``."""
    return _LARGE_INPUT_JVM if input_bytes >= LARGE_INPUT_BYTES else _SMALL_INPUT_JVM


def session(memory_mb: int, input_bytes: int = 0) -> Any:
    """The process's SparkSession; the first call decides its memory and, from the bytes its task reads first,
    its JIT and collector (see :data:`LARGE_INPUT_BYTES`)."""
    global _SESSION
    with _LOCK:
        if _SESSION is not None and _SESSION.sparkContext._jsc is not None:
            return _SESSION
        java_version()
        from pyspark.sql import SparkSession

        # Spark picks a non-loopback address (and warns) unless told; functions talk to nobody.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python UDFs run in Spark's Python workers, which start `python3` from PATH unless told: a virtualenv's
        # sparkflow run without the virtualenv activated would run them on another Python, without pandas or pyarrow.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        driver_mb = max(512, int(memory_mb * ENGINES["spark"].memory_share))
        log_config = resources.files("sparkflow.runtime").joinpath("conf/log4j2.properties")
        jvm_options = f"{jvm_tuning(input_bytes)} -Dlog4j2.configurationFile=file:{log_config}"
        builder = (
            SparkSession.builder.master(f"local[{os.cpu_count() or 1}]")
            .appName("sparkflow")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(max(2, os.cpu_count() or 1)))
            .config("spark.sql.adaptive.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", f"{driver_mb}m")
            .config("spark.driver.extraJavaOptions", jvm_options)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
            .config("spark.sql.maxConcurrentOutputFileWriters", str(_CONCURRENT_WRITERS))
            # Timestamps as Parquet's INT64 microseconds adjusted to UTC, as Sail and DuckDB write them and every
            # reader understands, not Spark's legacy INT96 (which pyarrow reads as nanoseconds without a zone).
            .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        )
        log = os.environ.get(ENGINE_LOG_VARIABLE) or _ENGINE_LOG.get("path")
        with _stderr_into(log):  # the JVM keeps the stderr it starts with
            _SESSION = builder.getOrCreate()
        _SESSION.sparkContext.setLogLevel("ERROR")
        _quiet_query_context_logs()
        return _SESSION


_ENGINE_LOG: dict[str, str] = {}


def log_engine_to(path: str) -> None:
    """Send the JVM's own lines (start-up notices, log4j errors, Java stack traces) of a session this process starts
    from now on to the file ``path`` instead of stderr (``SPARKFLOW_ENGINE_LOG`` set in the environment wins): what
    the commands a person runs at a terminal do."""
    _ENGINE_LOG["path"] = path


@contextlib.contextmanager
def _stderr_into(path: str | None) -> Iterator[None]:
    """While inside, this process's stderr (file descriptor 2, which a child process inherits) appends to ``path``;
    nothing changes when ``path`` is None."""
    if not path:
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(target)


def _quiet_query_context_logs() -> None:
    """PySpark logs every analysis error as a JSON line on stderr before raising it; the runtime reports the error
    itself (with the user's frames: see sparkflow.runtime.failures), so the copy is only noise."""
    import logging

    from pyspark.logger import PySparkLogger

    for name in ("DataFrameQueryContextLogger", "SQLQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


def ship_module(module: ModuleType) -> None:
    """Let Spark's Python workers unpickle the user's functions (UDFs) by value: the pipeline module is
    loaded from a file and is not importable by name in the workers."""
    from pyspark import cloudpickle

    with contextlib.suppress(ValueError):  # already registered, or a built-in module
        cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
