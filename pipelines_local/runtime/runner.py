"""The local runtime: every event source mapping of a workspace, polled in one loop.

Typical use::

    runtime = Workspace.load("local").runtime()   # or LocalRuntime.connect(endpoint, ...)
    result = runtime.run(until_drained=True, max_seconds=60)
    result.stats.records_delivered

One thread serves every mapping round-robin; each mapping serves its shards round-robin, one
batch per shard per turn, so order holds per shard. :meth:`LocalRuntime.step` is one turn of
everything, for tests that want to drive the loop themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.config import Config

from pipelines.consumers.metrics import EVENTS_QUARANTINED
from pipelines_local.emulator import emulator_env
from pipelines_local.runtime.checkpoints import CheckpointStore
from pipelines_local.runtime.destinations import Destinations
from pipelines_local.runtime.discovery import KINESIS, MappingConfig, discover_mappings
from pipelines_local.runtime.invoker import Invoker
from pipelines_local.runtime.kinesis import KinesisPoller
from pipelines_local.runtime.logs import FunctionOutput
from pipelines_local.runtime.options import RuntimeOptions
from pipelines_local.runtime.sqs import SqsPoller
from pipelines_local.runtime.stats import MappingStats

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]
_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"})
_PROGRESS_EVERY = 10.0


class Poller(Protocol):
    mapping: MappingConfig
    stats: MappingStats

    def step(self) -> bool: ...

    def drained(self) -> bool: ...


@dataclass
class RunResult:
    """What a run did: whether it drained, how long it took, and its counters."""

    drained: bool
    seconds: float
    stats: MappingStats
    mappings: dict[str, MappingStats] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drained": self.drained,
            "seconds": round(self.seconds, 2),
            "stats": self.stats.to_dict(),
            "mappings": {label: stats.to_dict() for label, stats in self.mappings.items()},
        }


class LocalRuntime:
    """Plays Lambda's event source mappings against an AWS endpoint, in this process."""

    def __init__(
        self,
        client_factory: ClientFactory,
        *,
        function_prefix: str = "",
        functions: Iterable[str] | None = None,
        checkpoints: CheckpointStore | None = None,
        options: RuntimeOptions | None = None,
        base_environment: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        log_dir: Path | None = None,
    ) -> None:
        self.function_prefix = function_prefix
        self.functions = None if functions is None else frozenset(functions)
        # Functions' standard output: their log files and the EMF metrics in it.
        self.output = FunctionOutput(log_dir)
        self.checkpoints = checkpoints or CheckpointStore.in_memory()
        self.options = options or RuntimeOptions()
        self._client = client_factory
        self._clock = clock
        self._sleep = sleep
        self._invoker = Invoker(base_environment=base_environment)
        self._invoker.output = self.output
        self._destinations = Destinations(client_factory)
        self._pollers: list[Poller] | None = None

    @classmethod
    def connect(
        cls,
        endpoint_url: str | None,
        *,
        region: str | None = None,
        function_prefix: str = "",
        functions: Iterable[str] | None = None,
        checkpoint_path: str | Path | None = None,
        options: RuntimeOptions | None = None,
        clock: Callable[[], float] = time.time,
        log_dir: Path | None = None,
    ) -> LocalRuntime:
        """A runtime whose clients, and whose handlers' clients, go to ``endpoint_url``."""
        env = emulator_env(endpoint_url) if endpoint_url else {}
        if region:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
        session: Any = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=env.get("AWS_REGION") or region,
        )

        def make(service: str) -> Any:
            return session.client(service, endpoint_url=endpoint_url, config=_CLIENT_CONFIG)

        return cls(
            make,
            function_prefix=function_prefix,
            functions=functions,
            checkpoints=CheckpointStore(checkpoint_path),
            options=options,
            base_environment=env,
            clock=clock,
            log_dir=log_dir,
        )

    @property
    def pollers(self) -> list[Poller]:
        """One poller per mapping, discovered on first use."""
        if self._pollers is None:
            self._pollers = [self._poller(m) for m in self.discover()]
            for poller in self._pollers:
                logger.info("serving %s (mapping %s)", poller.mapping.label, poller.mapping.uuid)
        return self._pollers

    def discover(self) -> list[MappingConfig]:
        """The enabled Kinesis and SQS mappings of the runtime's functions.

        Those named in ``functions`` when given (a workspace's, from Terraform's outputs),
        else those whose names start with ``function_prefix``.
        """
        mappings = discover_mappings(self._client("lambda"), self.function_prefix)
        if self.functions is None:
            return mappings
        return [m for m in mappings if m.function.name in self.functions]

    def step(self) -> bool:
        """One turn of every mapping; True if any function was invoked."""
        worked = False
        with self.output.installed():
            for poller in self.pollers:
                service = poller.mapping.function.environment.get("POWERTOOLS_SERVICE_NAME")
                quarantined = self._quarantined(service)
                worked = poller.step() or worked
                poller.stats.events_quarantined += self._quarantined(service) - quarantined
        return worked

    def _quarantined(self, service: str | None) -> int:
        """The ``EventsQuarantined`` the functions of ``service`` reported so far."""
        if not service:
            return 0
        return round(self.output.metrics.total(EVENTS_QUARANTINED, service=service))

    def drained(self) -> bool:
        """Every mapping has caught up and nothing is in flight."""
        return all(poller.drained() for poller in self.pollers)

    @property
    def stats(self) -> MappingStats:
        """Counters summed over every mapping."""
        total = MappingStats()
        for poller in self.pollers:
            total.add(poller.stats)
        return total

    def run(
        self,
        until_drained: bool = False,
        max_seconds: float | None = None,
        progress: Callable[[LocalRuntime], None] | None = None,
    ) -> RunResult:
        """Poll until drained (with ``until_drained``), ``max_seconds`` pass, or interrupted.

        Drained means a whole turn invoked nothing and afterwards every mapping had caught up
        with nothing buffered, retried or in flight. ``progress`` is called after every turn
        that invoked a function.
        """
        started = self._clock()
        last_progress = started
        drained = False
        if not self.pollers:
            wanted = sorted(self.functions) if self.functions is not None else self.function_prefix
            logger.warning("no event source mappings for functions %r", wanted)
        while True:
            worked = self.step()
            if worked and progress is not None:
                progress(self)
            now = self._clock()
            if until_drained and not worked and self.drained():
                drained = True
                break
            if max_seconds is not None and now - started >= max_seconds:
                break
            if now - last_progress >= _PROGRESS_EVERY:
                last_progress = now
                logger.info("runtime: %s", self.stats.to_dict())
            if not worked:
                self._sleep(self.options.idle_sleep)
        return RunResult(
            drained=drained,
            seconds=self._clock() - started,
            stats=self.stats,
            mappings={p.mapping.label: p.stats for p in self.pollers},
        )

    def _poller(self, mapping: MappingConfig) -> Poller:
        if mapping.source_kind == KINESIS:
            return KinesisPoller(
                mapping,
                self._client("kinesis"),
                self._invoker,
                self.checkpoints,
                self._destinations,
                self.options,
                self._clock,
            )
        return SqsPoller(mapping, self._client("sqs"), self._invoker, self._clock)
