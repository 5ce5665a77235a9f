"""The one answer to "which names does workspace X have": Terraform's own outputs.

``pipeline up`` records, for each workspace it deploys, where it is (the endpoint and
region) and every output of the root module (``terraform output -json``) in
``<state dir>/workspaces/<workspace>.json``; ``pipeline down`` removes the record. A
:class:`Workspace` is that record: ``pipeline run``, ``query``, ``simulate`` and ``demo``,
and the tests, take stream, bucket, table, function and catalog names from it and never
derive one themselves, so changing ``var.project`` or a module's naming changes nothing
here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from pipelines.consumers.lake import LakeCatalog
    from pipelines_local.runtime import LocalRuntime, RuntimeOptions

DEFAULT_WORKSPACE = "local"


class WorkspaceError(PipelineError):
    """The workspace is not deployed, or its record does not say what is asked."""


def default_state_dir() -> Path:
    """Where local state lives: ``$PIPELINE_STATE_DIR`` or ``.pipeline/`` in the project."""
    from pipelines_local.infra.stack import state_root

    return state_root()


def record_path(state_dir: Path, name: str) -> Path:
    return state_dir / "workspaces" / f"{name}.json"


def promoted_tfvars_path(state_dir: Path, name: str) -> Path:
    """``<state dir>/projections/<workspace>.tfvars.json``: the tables promoted rebuilds put the
    projector on (``projection_tables``), passed to Terraform so that an apply keeps them."""
    return state_dir / "projections" / f"{name}.tfvars.json"


@dataclass(frozen=True)
class Workspace:
    """A deployed workspace: where it is, and what Terraform named in it."""

    name: str
    endpoint_url: str | None  # None: AWS itself, through the default credential chain
    region: str
    outputs: Mapping[str, Any]
    state_dir: Path = field(default_factory=default_state_dir)
    embedded: bool = False  # on the embedded emulator `pipeline up` started

    # --- recording and loading ----------------------------------------------------------

    @classmethod
    def load(
        cls, name: str, state_dir: Path | None = None, endpoint_url: str | None = None
    ) -> Workspace:
        """The workspace ``pipeline up`` deployed; ``endpoint_url`` overrides where it is."""
        state = state_dir or default_state_dir()
        path = record_path(state, name)
        if not path.is_file():
            raise WorkspaceError(
                f"workspace {name!r} is not deployed from here: no {path} "
                f"(run `pipeline up --workspace {name}`)"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"cannot read {path}: {exc}") from exc
        embedded = bool(data.get("embedded")) and not endpoint_url
        if embedded:
            from pipelines_local.infra.stack import running_emulator

            emulator = running_emulator(state)
            if emulator is None or emulator["endpoint_url"] != data.get("endpoint_url"):
                raise WorkspaceError(
                    f"workspace {name!r} was on an embedded emulator that is no longer "
                    f"running (run `pipeline up --workspace {name}`)"
                )
        return cls(
            name=name,
            endpoint_url=endpoint_url or data.get("endpoint_url") or None,
            region=str(data.get("region") or data["outputs"].get("region", "")),
            outputs=data["outputs"],
            state_dir=state,
            embedded=embedded,
        )

    def save(self) -> Path:
        """Record this workspace (what ``pipeline up`` does after applying)."""
        path = record_path(self.state_dir, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "workspace": self.name,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "embedded": self.embedded,
            "outputs": dict(self.outputs),
        }
        path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return path

    @staticmethod
    def forget(name: str, state_dir: Path | None = None) -> None:
        record_path(state_dir or default_state_dir(), name).unlink(missing_ok=True)

    # --- names, all from the outputs ------------------------------------------------------

    def output(self, name: str) -> Any:
        try:
            return self.outputs[name]
        except KeyError:
            raise WorkspaceError(
                f"workspace {self.name!r} has no output {name!r} (re-run `pipeline up`)"
            ) from None

    def _entry(self, output: str, key: str) -> str:
        names = self.output(output)
        if key not in names:
            raise WorkspaceError(
                f"workspace {self.name!r}: output {output!r} has no {key!r} "
                f"(it has {', '.join(sorted(names))})"
            )
        return str(names[key])

    @property
    def stream_name(self) -> str:
        return str(self.output("stream_name"))

    @property
    def stream_arn(self) -> str:
        return str(self.output("stream_arn"))

    def bucket(self, purpose: str) -> str:
        """``lake``, ``archive``, ``quarantine``, ``uploads``, ``athena_results``, ``artifacts``."""
        return self._entry("bucket_names", purpose)

    def table(self, projection: str) -> str:
        """``users``, ``transactions``, ``alerts``, ... (``table_names``)."""
        return self._entry("table_names", projection)

    def function(self, name: str) -> str:
        """A function's name by its name in Terraform (``projector``, ``lake-writer``)."""
        return self._entry("function_names", name)

    @property
    def function_names(self) -> list[str]:
        return sorted(str(v) for v in self.output("function_names").values())

    def topic(self, key: str) -> str:
        return self._entry("topic_arns", key)

    @property
    def glue_database(self) -> str:
        return str(self.output("glue_database"))

    @property
    def athena_workgroup(self) -> str:
        return str(self.output("athena_workgroup"))

    # --- local state ------------------------------------------------------------------

    @property
    def runtime_dir(self) -> Path:
        """``<state dir>/runtime/<workspace>``: checkpoints and function logs."""
        return self.state_dir / "runtime" / self.name

    @property
    def checkpoint_path(self) -> Path:
        return self.runtime_dir / "checkpoints.json"

    @property
    def log_dir(self) -> Path:
        return self.runtime_dir / "logs"

    # --- reaching it ------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What a client needs to reach the workspace: endpoint, region, test credentials."""
        if self.endpoint_url is None:
            return {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        from pipelines_local.emulator import emulator_env

        env = emulator_env(self.endpoint_url)
        if self.region:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.region
        return env

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client of ``service`` bound to the workspace."""
        import boto3

        env = self.env()
        session: Any = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=env.get("AWS_REGION") or os.environ.get("AWS_REGION"),
        )
        return session.client(service, endpoint_url=self.endpoint_url, **kwargs)

    def filesystem(self) -> pafs.S3FileSystem:
        """pyarrow's S3 filesystem on the workspace (the lake's objects)."""
        from pipelines.adapters.objects import s3_filesystem

        env = self.env()
        return s3_filesystem(
            env["AWS_REGION"],
            self.endpoint_url,
            access_key=env.get("AWS_ACCESS_KEY_ID"),
            secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )

    def lake_catalog(
        self, *, database: str | None = None, bucket: str | None = None
    ) -> LakeCatalog:
        """The lake's Iceberg tables in the workspace's Glue database (or ``database``, its
        new tables in ``bucket``)."""
        from pipelines.consumers.lake import LakeCatalog, LakeTables, glue_catalog

        env = self.env()
        catalog = glue_catalog(
            env["AWS_REGION"],
            self.endpoint_url,
            access_key=env.get("AWS_ACCESS_KEY_ID"),
            secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )
        return LakeCatalog(
            catalog, database or self.glue_database, bucket or self.bucket("lake"), LakeTables()
        )

    def runtime(self, options: RuntimeOptions | None = None) -> LocalRuntime:
        """The local runtime of the workspace's functions, its checkpoints and logs."""
        from pipelines_local.runtime import LocalRuntime

        if self.endpoint_url is None:
            raise WorkspaceError(
                f"workspace {self.name!r} is on AWS, where Lambda runs the functions itself"
            )
        return LocalRuntime.connect(
            self.endpoint_url,
            region=self.region or None,
            functions=self.function_names,
            checkpoint_path=self.checkpoint_path,
            options=options,
            log_dir=self.log_dir,
        )
