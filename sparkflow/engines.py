"""The engines a stage can run on, as one table: what each is, how the compiler sizes its tasks, what its start-up
costs, how it ships and which of its errors are final.

Everything that depends on which engine runs a stage reads it here: the DSL and the CLI (which names exist), the
split pass (the chunk model and the memory share), the place pass (which engine runs on serverless Spark
clusters), the estimate (start-up and throughput), the targets (how a function of this engine ships, which errors
a state machine does not retry) and the runtime (which class runs it, whether a process must be prepared for it
before the user's module is imported, whether its tasks take turns). A new engine is one entry here and one runtime
module; no other file names it.

This module imports nothing heavy: the runtime reads it in every function.

Where each figure was measured: docs/performance.md ("Estimates") and docs/engines.md.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from sparkflow.errors import DefinitionError, Origin

MiB = 1024**2

#: How a function of an engine ships on AWS: a container image (``image``: Spark with its JVM, Sail with its Rust
#: server) or a plain Lambda .zip (``zip``: small enough for the 250 MB unzipped limit).
Shipping = Literal["image", "zip"]


@dataclass(frozen=True)
class Package:
    """A distribution the functions of one engine install and those of the other engines leave out.

    Attributes:
        name: the distribution installed.
        version_of: the requirement of sparkflow's whose pinned version it is installed at, when it stands in for
            that one (PySpark's Connect client, ``pyspark-client``, at the pinned ``pyspark``'s version); None: the
            requirement ``name`` itself, as sparkflow pins it (extras included).
    """

    name: str
    version_of: str | None = None

    @property
    def pin(self) -> str:
        """The name of the requirement of sparkflow's whose pin it takes."""
        return self.version_of or self.name


@dataclass(frozen=True)
class ChunkModel:
    """An engine's measured behaviour on one task (the split pass's model, :mod:`sparkflow.compiler.chunking`).

    Attributes:
        expansion: peak engine memory per input byte.
        throughput: input bytes per second one task processes (on 2 vCPUs).
    """

    expansion: float
    throughput: float


@dataclass(frozen=True)
class StartUp:
    """What an engine's start-up costs, in seconds (the estimate, :mod:`sparkflow.estimate.model`).

    Attributes:
        cloud_task: a deployed task, cold (a new function instance starts the engine).
        local_session: ``sparkflow run``: once per run (the SparkSession, or the worker processes).
        local_task: ``sparkflow run``: each task, with the engine warm.
    """

    cloud_task: float
    local_session: float
    local_task: float


@dataclass(frozen=True)
class EngineSpec:
    """One engine.

    Attributes:
        name: what ``engine=``, ``--engine`` and ``SPARKFLOW_ENGINE`` say.
        summary: one line for help texts and errors.
        runtime: ``module:Class`` of its runtime engine (:class:`sparkflow.runtime.engines.Engine`), imported only
            when a task runs on it; constructed as ``Class(memory_mb, pipeline_module)``.
        prepare: ``module:function`` that makes a process this engine's, run before the user's pipeline module is
            imported (its PySpark imports must bind the engine's classes); such a process runs only this engine,
            and ``sparkflow run`` gives its stages worker processes. None: the engine shares the process (Spark).
        chunk_model: the split pass's model of one task.
        memory_share: the share of a task's memory the engine itself may take (the rest: Python, the OS, the page
            cache, the engine's own copies of inputs and outputs).
        start_up: the estimate's start-up figures.
        needs_jvm: whether it runs on a Java virtual machine (its image needs Java).
        runs_on_clusters: whether a stage on it may be placed on serverless Spark (EMR Serverless, Dataproc).
        one_task_at_a_time: whether tasks of one process must take turns (one connection that refuses a second
            query while one runs); several tasks at once then take several processes.
        final_errors: the errors of its own (besides the protocol's) that another attempt cannot fix.
        ships_as: how its functions ship on AWS.
        installs: what only its functions install (:func:`sparkflow.shipping.requirements.engine_requirements`):
            an image or zip of another engine leaves these out, this engine's leaves out theirs.
        selectable: whether users may name it (``spark-cluster`` is the runtime's name for Spark on a cluster).
    """

    name: str
    summary: str
    runtime: str
    prepare: str | None
    chunk_model: ChunkModel
    memory_share: float
    start_up: StartUp
    needs_jvm: bool
    runs_on_clusters: bool
    one_task_at_a_time: bool
    final_errors: tuple[str, ...]
    ships_as: Shipping
    installs: tuple[Package, ...]
    selectable: bool = True

    @property
    def own_process(self) -> bool:
        """Whether a process running this engine runs nothing else (see :attr:`prepare`)."""
        return self.prepare is not None


_SPARK_START = StartUp(cloud_task=3.78, local_session=7.36, local_task=0.375)
_SPARK_MODEL = ChunkModel(expansion=4.0, throughput=20 * MiB)

ENGINES: dict[str, EngineSpec] = {
    spec.name: spec
    for spec in (
        EngineSpec(
            name="spark",
            summary="PySpark in local mode: the reference (a JVM per process)",
            runtime="sparkflow.runtime.engines:SparkEngine",
            prepare=None,
            chunk_model=_SPARK_MODEL,
            memory_share=0.6,
            start_up=_SPARK_START,
            needs_jvm=True,
            runs_on_clusters=True,
            one_task_at_a_time=False,
            final_errors=(),
            ships_as="image",
            installs=(Package("pyspark"),),
        ),
        EngineSpec(
            name="sail",
            summary="Sail: PySpark's own API on a Rust Spark Connect server in the process (no JVM)",
            runtime="sparkflow.runtime.sail_engine:SailEngine",
            prepare="sparkflow.runtime.sail_engine:prepare",
            chunk_model=ChunkModel(expansion=2.0, throughput=40 * MiB),
            memory_share=0.6,
            start_up=StartUp(cloud_task=1.0, local_session=1.0, local_task=0.05),
            needs_jvm=False,
            runs_on_clusters=False,
            one_task_at_a_time=False,
            final_errors=("EngineUnsupported",),
            # Not a zip: Sail's native library and the pyarrow that PySpark's Connect client needs are over Lambda's
            # 250 MB unzipped limit together (docs/engines.md, "Deployable size").
            ships_as="image",
            # PySpark's Connect client without the JVM side (pyspark's jars are nearly all of its size).
            installs=(Package("pysail"), Package("pyspark-client", version_of="pyspark")),
        ),
        EngineSpec(
            name="duckdb",
            summary="sqlframe on DuckDB: the DataFrame API translated to SQL (no JVM, fits a Lambda zip)",
            runtime="sparkflow.runtime.duckdb_engine:DuckDBEngine",
            prepare="sparkflow.runtime.duckdb_engine:activate",
            chunk_model=ChunkModel(expansion=2.0, throughput=40 * MiB),
            memory_share=0.75,
            start_up=StartUp(cloud_task=0.558, local_session=0.558, local_task=0.024),
            needs_jvm=False,
            runs_on_clusters=False,
            one_task_at_a_time=True,
            final_errors=("EngineUnsupported",),
            ships_as="zip",
            installs=(Package("sqlframe"), Package("duckdb")),
        ),
        EngineSpec(
            name="spark-cluster",
            summary="Spark on a serverless cluster (EMR Serverless, Dataproc Serverless), reading storage itself",
            runtime="sparkflow.runtime.cluster:ClusterSparkEngine",
            prepare=None,
            chunk_model=_SPARK_MODEL,
            memory_share=0.6,
            start_up=_SPARK_START,
            needs_jvm=True,
            runs_on_clusters=True,
            one_task_at_a_time=False,
            final_errors=(),
            ships_as="image",
            installs=(Package("pyspark"),),
            selectable=False,
        ),
    )
}

#: The engines users may name, in the order help texts list them.
NAMES: tuple[str, ...] = tuple(name for name, spec in ENGINES.items() if spec.selectable)
#: The engine of a stage that names none.
DEFAULT = "spark"
#: What a stage or pipeline may say instead of an engine: the compiler chooses, per stage (see
#: :mod:`sparkflow.compiler.passes.engine_choice`): the first of :data:`AUTO_CANDIDATES` whose measured differences
#: from Spark the stage's code does not touch, else Spark.
AUTO = "auto"
#: The engines ``auto`` may choose, fastest first.
AUTO_CANDIDATES: tuple[str, ...] = ("sail",)
#: What ``engine=`` may say.
CHOICES: tuple[str, ...] = (*NAMES, AUTO)


class UnknownEngine(DefinitionError):
    """An engine name that is not in :data:`ENGINES`."""


def engine(name: str, *, what: str = "engine", origin: Origin | None = None) -> EngineSpec:
    """The engine ``name`` (one users may name), or an :class:`UnknownEngine` naming ``what`` and the nearest name."""
    spec = ENGINES.get(name) if isinstance(name, str) else None
    if spec is not None and spec.selectable:
        return spec
    raise UnknownEngine(f"{what}={name!r} is not available; use one of: {', '.join(NAMES)}{_nearest(name)}", origin)


def choice(name: str, *, what: str = "engine", origin: Origin | None = None) -> str:
    """``name`` if a stage or pipeline may say it (an engine users may name, or ``auto``), else an
    :class:`UnknownEngine` naming ``what`` and the nearest choice."""
    if name == AUTO or (isinstance(name, str) and name in NAMES):
        return name
    listed = ", ".join(CHOICES)
    raise UnknownEngine(f"{what}={name!r} is not available; use one of: {listed}{_nearest(name, CHOICES)}", origin)


def runtime_engine(name: str) -> EngineSpec:
    """The engine ``name`` as the runtime knows it (``spark-cluster`` included); an unknown name is an error."""
    spec = ENGINES.get(name)
    if spec is None:
        raise UnknownEngine(f"engine {name!r} is not one this runtime has: {', '.join(ENGINES)}{_nearest(name)}")
    return spec


def flag(name: str) -> str:
    """`` --engine NAME`` as a command that ships ``name`` says it (nothing for the default), e.g. in
    ``sparkflow package --engine sail``."""
    return "" if name == DEFAULT else f" --engine {name}"


def shipped_as(kind: Shipping) -> tuple[str, ...]:
    """The engines users may name whose functions ship as ``kind`` on AWS, in :data:`NAMES`' order."""
    return tuple(name for name in NAMES if ENGINES[name].ships_as == kind)


def _nearest(name: object, among: tuple[str, ...] = NAMES) -> str:
    close = difflib.get_close_matches(str(name), list(among), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
