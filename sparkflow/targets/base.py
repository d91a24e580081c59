"""What every target provides. A target is one place (a package) plus one entry in the registry."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sparkflow.errors import OptionError, SparkflowError
from sparkflow.layout import WORK_EXPIRY_DAYS
from sparkflow.plan import Plan

if TYPE_CHECKING:
    from sparkflow.dsl.pipeline import Pipeline
    from sparkflow.targets.runlogs import LogQuery
    from sparkflow.targets.runs import RunStatus


@dataclass(frozen=True)
class Limit:
    """A provider limit and the documentation page it comes from."""

    value: int
    unit: str
    what: str
    source: str

    def describe(self) -> str:
        return f"{self.what} of {self.value:,} {self.unit} ({self.source})"


@dataclass(frozen=True)
class FunctionLimits:
    """The limits the target-independent passes check for every function stage."""

    memory_mb: Limit
    timeout_s: Limit
    # Local disk a function may fill (Lambda's /tmp); None when it is not the binding limit.
    scratch_bytes: Limit | None = None


@dataclass(frozen=True)
class ContainerLimits:
    """A target's containers (ECS Fargate tasks / Cloud Run jobs): the machine sizes sparkflow uses, as
    (vCPUs, memory in MB) pairs the provider accepts, smallest first, and their limits.

    Attributes:
        service: the name users know, for messages.
        sizes: the sizes a container stage may get; its memory is rounded up to one of them.
        timeout_s: the longest a container may run.
        scratch_bytes: local disk a container may fill; None when its disk is memory (Cloud Run).
    """

    service: str
    sizes: tuple[tuple[int, int], ...]
    timeout_s: Limit
    scratch_bytes: Limit | None
    source: str

    @property
    def memory_mb(self) -> Limit:
        return Limit(self.sizes[-1][1], "MB", f"{self.service} memory limit", self.source)

    def size_for(self, memory_mb: int) -> tuple[int, int]:
        """The smallest size with at least ``memory_mb`` (the largest if none has)."""
        return next((size for size in self.sizes if size[1] >= memory_mb), self.sizes[-1])


class Target(Protocol):
    """A compile target: turns a Plan into the text of one definition file."""

    @property
    def name(self) -> str: ...

    @property
    def suffix(self) -> str:
        """File name suffix of the definition, e.g. ``.asl.json``."""
        ...

    @property
    def function_limits(self) -> FunctionLimits: ...

    @property
    def container_limits(self) -> ContainerLimits | None:
        """Containers for stages too big or too long for a function; None where there are none (local runs)."""
        ...

    @property
    def serverless_spark(self) -> str | None:
        """The serverless Spark service whole stages beyond any container go to (None: there is none)."""
        ...

    def emit(self, plan: Plan) -> str:
        """The definition, deterministic: the same plan gives the same bytes."""
        ...

    def check(self, plan: Plan, definition: str) -> list[SparkflowError]:
        """Problems of the emitted definition against the target's limits (size, states, payload)."""
        ...


@dataclass(frozen=True)
class ShipOptions:
    """What the command line says about shipping and running a pipeline. Each target reads the options that apply
    to it (the command's help names the target of each) and raises an OptionError for one it needs and lacks.

    Attributes:
        out: the build context folder of ``package``.
        inputs: source name -> the location deployed functions read it from.
        storage_root: where runs write (the pipeline's ``storage=`` unless given).
        engine: the engine of every stage; how its functions ship is the registry's
            (:attr:`~sparkflow.engines.EngineSpec.ships_as`: an image for spark and sail, on aws a .zip for duckdb).
        python_version, wheelhouse: the zip's Lambda Python and where its wheels come from.
        image_uri: the stage image ``package`` built, once pushed.
        stack, role_arn, region, profile: aws (``role_arn``: the service role CloudFormation acts as).
        code_bucket: aws: the bucket ``deploy`` uploads what the stack reads from S3 to (default: the storage's).
        parameters: aws: template parameters ``deploy`` sets besides those it fills itself.
        project, service_url, job, env: gcp (``region`` too).
        scheduler_service_account: gcp: the service account whose OAuth token a scheduled pipeline's Cloud
            Scheduler job starts runs with.
        trigger_service_account: gcp: the service account a triggered pipeline's Eventarc trigger executes the
            workflow as.
        params: ``start``: every parameter's value for the run (``sf.param``), already checked against the Plan.
        keep_work: ``start``: keep the run's working files once it has published (``--keep-work``).
        work_expiry_days: ``package`` (gcp) and ``deploy`` (aws): the days after which the storage's lifecycle rule
            deletes working files failed runs left (0: no rule).
    """

    out: str = "build"
    inputs: Mapping[str, str] = field(default_factory=dict)
    storage_root: str | None = None
    engine: str = "spark"
    python_version: str | None = None
    wheelhouse: str | None = None
    image_uri: str | None = None
    stack: str | None = None
    role_arn: str | None = None
    region: str | None = None
    profile: str | None = None
    code_bucket: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    project: str | None = None
    service_url: str | None = None
    job: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    scheduler_service_account: str | None = None
    trigger_service_account: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    keep_work: bool = False
    work_expiry_days: int = WORK_EXPIRY_DAYS

    def storage(self, pipeline: Pipeline) -> str:
        """Where runs of ``pipeline`` write: ``--storage-root``, else the pipeline's ``storage=``."""
        root = self.storage_root or pipeline.storage
        if not root:
            raise OptionError(f"pipeline {pipeline.name!r} declares no storage=: pass --storage-root")
        return root


class Shipping(Protocol):
    """What ``sparkflow package``, ``deploy``, ``delete``, ``start``, ``logs`` and ``status`` do on one target (see
    :class:`CloudTarget` for each): a target's ``ship`` module provides these functions."""

    def package(self, pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]: ...

    def deploy(self, pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> str: ...

    def delete(self, pipeline: Pipeline, options: ShipOptions) -> str: ...

    def start(self, pipeline: Pipeline, options: ShipOptions, run_id: str | None) -> str: ...

    def resume(self, pipeline: Pipeline, options: ShipOptions, run_id: str) -> str: ...

    def logs(self, pipeline: Pipeline, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]: ...

    def status(self, execution: str, options: ShipOptions) -> RunStatus: ...

    def follow(
        self, execution: str, options: ShipOptions, on_update: Callable[[RunStatus], None] | None = None
    ) -> RunStatus: ...


class HoldsRuns(Target, Protocol):
    """Where runs happen and their log lines can be read back: every cloud target, and this machine (whose
    ``sparkflow run`` plans with it)."""

    def logs(self, pipeline: Pipeline, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]:
        """The runtime's log records of the run ``query.run_id`` (of its stage ``query.nodes``), oldest first;
        following, new ones until the run ends. A run that does not exist is refused."""
        ...


class CloudTarget(HoldsRuns, Protocol):
    """A target pipelines are shipped to and run on: what ``sparkflow package``, ``deploy``, ``delete``, ``start``,
    ``logs`` and ``status`` call, the same way for every target. Implementations import their cloud clients when
    called, so that compiling never needs them."""

    def package(self, pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
        """Write the build context into ``options.out``; return the lines to show (what was written, what next)."""
        ...

    def deploy(self, pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> str:
        """Create or update the deployed pipeline; return what identifies it (an ARN, a resource name)."""
        ...

    def delete(self, pipeline: Pipeline, options: ShipOptions) -> str:
        """Remove what ``deploy`` created, never the data (storage, values); return what was deleted."""
        ...

    def start(self, pipeline: Pipeline, options: ShipOptions, run_id: str | None) -> str:
        """Start a run of the deployed pipeline reading ``options.inputs``; return its execution's id."""
        ...

    def resume(self, pipeline: Pipeline, options: ShipOptions, run_id: str) -> str:
        """Run the run ``run_id``, which ended without succeeding, again: same run id, storage and inputs; every stage
        it committed answers at once. Return the new execution's id. A run that does not exist, is still running or
        succeeded is refused."""
        ...

    def status(self, execution: str, options: ShipOptions) -> RunStatus:
        """Where the run ``execution`` is now."""
        ...

    def follow(
        self, execution: str, options: ShipOptions, on_update: Callable[[RunStatus], None] | None = None
    ) -> RunStatus:
        """Read the run's status until it ends, calling ``on_update`` with every reading; return the last one."""
        ...


class ShipsThrough:
    """The shipping half of a :class:`CloudTarget`, done by the module ``ship_module`` (a :class:`Shipping`),
    imported when a command runs: compiling never needs a cloud client."""

    ship_module: ClassVar[str]

    def _ship(self) -> Shipping:
        module: Shipping = importlib.import_module(self.ship_module)
        return module

    def package(self, pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
        return self._ship().package(pipeline, plan, definition, options)

    def deploy(self, pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> str:
        return self._ship().deploy(pipeline, plan, definition, options)

    def delete(self, pipeline: Pipeline, options: ShipOptions) -> str:
        return self._ship().delete(pipeline, options)

    def start(self, pipeline: Pipeline, options: ShipOptions, run_id: str | None) -> str:
        return self._ship().start(pipeline, options, run_id)

    def resume(self, pipeline: Pipeline, options: ShipOptions, run_id: str) -> str:
        return self._ship().resume(pipeline, options, run_id)

    def logs(self, pipeline: Pipeline, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]:
        return self._ship().logs(pipeline, options, query)

    def status(self, execution: str, options: ShipOptions) -> RunStatus:
        return self._ship().status(execution, options)

    def follow(
        self, execution: str, options: ShipOptions, on_update: Callable[[RunStatus], None] | None = None
    ) -> RunStatus:
        return self._ship().follow(execution, options, on_update)
