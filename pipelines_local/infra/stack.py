"""``pipeline up`` / ``pipeline down``: a Terraform workspace on the emulator or an endpoint.

Without an endpoint, ``up`` starts the embedded emulator in the background (it outlives the
command) and records it in ``.pipeline/emulator.json``; ``down`` destroys the workspace and
stops that emulator once no workspace on it holds resources. With an endpoint (LocalStack,
say) nothing is started or stopped. Either way Terraform runs on a copy of ``terraform/``
with the emulator override (see :mod:`pipelines_local.infra.override`), a local backend and the
offline CLI config, all under ``.pipeline/``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import PipelineError
from pipelines_local.emulator import emulator_env, start_emulator, stop_emulator
from pipelines_local.infra.cli_config import write_cli_config
from pipelines_local.infra.override import prepare_module
from pipelines_local.infra.terraform import ResourceProgress, Terraform, TerraformError
from pipelines_local.progress import ProgressCallback
from pipelines_local.workspace import DEFAULT_WORKSPACE, Workspace, promoted_tfvars_path

logger = logging.getLogger(__name__)


def _project_root() -> Path:
    """The checkout holding ``terraform/``: this package's, else the working directory."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "terraform").is_dir() else Path.cwd()


PROJECT_ROOT = _project_root()
EMBEDDED = "embedded"
PARALLELISM = 30
_WORKSPACE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")


class StackError(PipelineError):
    """The stack cannot be brought up or down as asked."""


@dataclass
class UpResult:
    """What ``pipeline up`` prints: where the stack is and Terraform's outputs."""

    endpoint_url: str
    region: str
    workspace: str
    outputs: dict[str, Any]
    emulator_pid: int | None = None
    started_emulator: bool = False
    created_workspace: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


@dataclass
class DownResult:
    """What ``pipeline down`` did."""

    workspace: str
    endpoint_url: str | None
    destroyed: bool
    stopped_emulator: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def state_root() -> Path:
    """Where local state lives: ``$PIPELINE_STATE_DIR`` or ``.pipeline/`` in the project."""
    return Path(os.environ.get("PIPELINE_STATE_DIR", PROJECT_ROOT / ".pipeline"))


def terraform_root() -> Path:
    """The root module: ``$PIPELINE_TERRAFORM_DIR`` or ``terraform/`` in the project."""
    return Path(os.environ.get("PIPELINE_TERRAFORM_DIR", PROJECT_ROOT / "terraform"))


def var_file_for(workspace: str, terraform_dir: Path) -> Path:
    """The workspace's own tfvars if it has one, else the local settings."""
    own = terraform_dir / "workspaces" / f"{workspace}.tfvars"
    return own if own.is_file() else terraform_dir / "workspaces" / f"{DEFAULT_WORKSPACE}.tfvars"


def up(
    workspace: str = DEFAULT_WORKSPACE,
    endpoint_url: str | None = None,
    *,
    state_dir: Path | None = None,
    terraform_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> UpResult:
    """Apply the stack to ``workspace`` on ``endpoint_url`` (or the embedded emulator).

    ``progress(step, done, total)`` hears of each step, and of each resource applied.
    """
    _check_workspace(workspace)
    state = state_dir or state_root()
    notify = progress or _quiet
    started = False
    pid = None
    if endpoint_url is None:
        record = running_emulator(state)
        if record is None:
            notify("starting the embedded emulator", 0, None)
            record = start_embedded_emulator(state)
            started = True
        endpoint_url, pid = record["endpoint_url"], record["pid"]
    else:
        check_endpoint(endpoint_url)
    tf = _terraform(
        state, endpoint_url, terraform_dir or terraform_root(), embedded=pid is not None
    )
    notify("terraform init (provider from the local mirror)", 0, None)
    tf.init()
    created = tf.use_workspace(workspace)
    notify("terraform apply: planning", 0, None)
    tf.apply(*_tf_args(tf, workspace, state), progress=_resources(notify, "terraform apply"))
    outputs = tf.outputs()
    region = str(outputs.get("region", emulator_env(endpoint_url)["AWS_REGION"]))
    deployed = Workspace(
        workspace, endpoint_url, region, outputs, state_dir=state, embedded=pid is not None
    )
    deployed.save()
    # The lake's Iceberg tables are the writer's (it creates a missing one on first write);
    # creating them here lets Athena and `pipeline query` see every table before any event.
    notify("creating the lake's Iceberg tables", 0, None)
    deployed.lake_catalog().ensure_all()
    return UpResult(
        endpoint_url=endpoint_url,
        region=region,
        workspace=workspace,
        outputs=outputs,
        emulator_pid=pid,
        started_emulator=started,
        created_workspace=created,
        seconds={k: round(v, 1) for k, v in tf.timings.items()},
    )


def down(
    workspace: str = DEFAULT_WORKSPACE,
    endpoint_url: str | None = None,
    *,
    state_dir: Path | None = None,
    terraform_dir: Path | None = None,
    keep_emulator: bool = False,
    progress: ProgressCallback | None = None,
) -> DownResult:
    """Destroy ``workspace``; stop the embedded emulator once nothing is left on it.

    With ``keep_emulator`` the emulator keeps running even when it is empty.
    """
    _check_workspace(workspace)
    state = state_dir or state_root()
    notify = progress or _quiet
    if endpoint_url is not None:
        check_endpoint(endpoint_url)
    record = None
    if endpoint_url is None:
        record = running_emulator(state)
        if record is None:
            # No emulator, so nothing of the workspace survives: forget its state.
            shutil.rmtree(_target_dir(state, EMBEDDED), ignore_errors=True)
            Workspace.forget(workspace, state)
            return DownResult(workspace, None, destroyed=False, stopped_emulator=False)
        endpoint_url = record["endpoint_url"]
    tf = _terraform(
        state, endpoint_url, terraform_dir or terraform_root(), embedded=record is not None
    )
    tf.init()
    destroyed = False
    if workspace in tf.workspaces():
        tf.workspace = workspace
        _drop_shadow_tables(tf, workspace, state)
        notify("terraform destroy: planning", 0, None)
        _destroy(tf, workspace, state, _resources(notify, "terraform destroy"))
        tf.workspace = None
        if workspace != "default":
            tf.run("workspace", "select", "-no-color", "default", with_workspace=False)
            tf.run("workspace", "delete", "-no-color", workspace, with_workspace=False)
        destroyed = True
    Workspace.forget(workspace, state)
    promoted_tfvars_path(state, workspace).unlink(missing_ok=True)
    stopped = False
    if record is not None and not keep_emulator and not _workspaces_with_resources(tf):
        stop_emulator(record["pid"])
        _emulator_record_path(state).unlink(missing_ok=True)
        shutil.rmtree(_target_dir(state, EMBEDDED), ignore_errors=True)
        stopped = True
    return DownResult(
        workspace=workspace,
        endpoint_url=endpoint_url,
        destroyed=destroyed,
        stopped_emulator=stopped,
        seconds={k: round(v, 1) for k, v in tf.timings.items()},
    )


def plan(
    workspace: str = DEFAULT_WORKSPACE,
    endpoint_url: str | None = None,
    *,
    state_dir: Path | None = None,
    terraform_dir: Path | None = None,
) -> tuple[bool, str]:
    """Plan ``workspace`` against what is deployed: (anything to change?, plan text)."""
    _check_workspace(workspace)
    state = state_dir or state_root()
    record = None
    if endpoint_url is None:
        record = running_emulator(state)
        if record is None:
            raise StackError("no embedded emulator is running: run `pipeline up` first")
        endpoint_url = record["endpoint_url"]
    source = terraform_dir or terraform_root()
    tf = _terraform(state, endpoint_url, source, embedded=record is not None)
    tf.init()
    if workspace not in tf.workspaces():
        raise StackError(f"workspace {workspace!r} does not exist at {endpoint_url}")
    tf.workspace = workspace
    return tf.plan_has_changes(*_tf_args(tf, workspace, state))


def _destroy(
    tf: Terraform, workspace: str, state: Path, progress: ResourceProgress | None = None
) -> None:
    args = _tf_args(tf, workspace, state)
    try:
        tf.destroy(*args, progress=progress)
    except TerraformError as exc:
        # Destroy is idempotent: a second pass finishes what a transient error interrupted
        # (seen on the emulator under load: a DeleteTable retried after it had succeeded).
        logger.warning("destroy failed, retrying once: %s", exc)
        tf.destroy(*args, progress=progress)


def _quiet(step: str, done: int, total: int | None) -> None:
    """The progress callback of callers that want none."""


def _resources(notify: ProgressCallback, step: str) -> ResourceProgress:
    """Terraform's per-resource progress as steps of ``notify``."""

    def report(done: int, total: int | None, resource: str) -> None:
        notify(f"{step}: resources" if total != 0 else f"{step}: no changes", done, total)

    return report


def check_endpoint(endpoint_url: str, timeout: float = 5.0) -> None:
    """Fail at once, and clearly, when nothing answers at ``endpoint_url``.

    Any HTTP answer will do (AWS-compatible endpoints answer ``/`` with an error document);
    what this catches is a refused or unreachable connection, which Terraform would
    otherwise report only after planning, buried in its output.
    """
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(endpoint_url, timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        hint = (
            " (start LocalStack: docker compose -f docker-compose.localstack.yml up -d)"
            if ":4566" in endpoint_url
            else ""
        )
        raise StackError(f"nothing answers at {endpoint_url}: {reason}{hint}") from None


def _check_workspace(name: str) -> None:
    if not _WORKSPACE_NAME.match(name):
        raise StackError(
            f"workspace {name!r}: use 1-20 lower-case letters, digits and hyphens "
            "(it becomes part of bucket and table names)"
        )


def _tf_args(tf: Terraform, workspace: str, state: Path) -> tuple[str, ...]:
    """The workspace's variables, its promoted rebuilds' tables (``pipeline replay promote``),
    the Lambda package (built if missing) and parallelism."""
    promoted = promoted_tfvars_path(state, workspace)
    return (
        f"-var-file={var_file_for(workspace, tf.workdir)}",
        *((f"-var-file={promoted}",) if promoted.is_file() else ()),
        f"-var=lambda_package={lambda_package()}",
        f"-parallelism={PARALLELISM}",
    )


def _drop_shadow_tables(tf: Terraform, workspace: str, state: Path) -> None:
    """Delete the rebuilds' shadow tables (``<prefix>-<projection>-rp-*``): not Terraform's."""
    try:
        deployed = Workspace.load(workspace, state_dir=state)
    except Exception:  # no record of it: nothing was rebuilt from here
        return
    from pipelines_local.rebuild import drop_tables, shadow_tables

    dynamodb = deployed.client("dynamodb")
    dropped = drop_tables(dynamodb, shadow_tables(dynamodb, str(deployed.output("name_prefix"))))
    if dropped:
        logger.info("dropped the rebuilds' shadow tables %s", ", ".join(dropped))


def lambda_package() -> Path:
    """The deployment package Terraform uploads; built with ``make package`` if missing."""
    from pipelines_local.packaging import build_package, default_package_path

    path = default_package_path()
    if not path.is_file():
        logger.info("building the Lambda package %s", path)
        build_package(path)
    return path


def _target_key(endpoint_url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", endpoint_url.lower().split("://", 1)[-1]).strip("-")


def _target_dir(state: Path, key: str) -> Path:
    return state / "targets" / key


def _terraform(state: Path, endpoint_url: str, source: Path, *, embedded: bool) -> Terraform:
    target = _target_dir(state, EMBEDDED if embedded else _target_key(endpoint_url))
    module = prepare_module(source, target / "module", target / "state")
    cli_config = write_cli_config(state / "terraformrc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(emulator_env(endpoint_url))
    env["TF_CLI_CONFIG_FILE"] = str(cli_config.resolve())
    return Terraform(workdir=module, env=env, data_dir=target / "data", inherit_env=False)


def _emulator_record_path(state: Path) -> Path:
    return state / "emulator.json"


def running_emulator(state: Path) -> dict[str, Any] | None:
    """The emulator a previous ``up`` started, if it is still running."""
    path = _emulator_record_path(state)
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    try:
        os.kill(int(record["pid"]), 0)
    except (ProcessLookupError, PermissionError, ValueError, KeyError):
        path.unlink(missing_ok=True)
        return None
    return record


def start_embedded_emulator(state: Path) -> dict[str, Any]:
    """Start the embedded emulator in the background and record it under ``state``."""
    state.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    emulator = start_emulator(port=0, detached=True, log_path=state / "emulator.log")
    record = {"endpoint_url": emulator.endpoint_url, "pid": emulator.pid}
    _emulator_record_path(state).write_text(json.dumps(record) + "\n")
    # A new emulator holds nothing: state kept for an earlier one no longer describes it.
    shutil.rmtree(_target_dir(state, EMBEDDED), ignore_errors=True)
    logger.info("emulator started in %.1fs at %s", time.monotonic() - started, record)
    return record


def _workspaces_with_resources(tf: Terraform) -> list[str]:
    busy = []
    for name in tf.workspaces():
        tf.workspace = name
        if tf.state_resources():
            busy.append(name)
    tf.workspace = None
    return busy
