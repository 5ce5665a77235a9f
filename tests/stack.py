"""The stack the tests run on: one apply of the real root module per test session.

:class:`DeployedStack` holds the applied workspace (its Terraform outputs, as a
:class:`~pipelines_local.workspace.Workspace`) and what the tests need of it:

* the deployed functions' configurations and environments, exactly as Terraform set them;
* :meth:`DeployedStack.isolated`: a function's environment with its tables, buckets and
  topics replaced by fresh copies, so that a test that compares whole tables, or counts
  every object of a bucket, sees only its own writes. A copy has the definition Terraform
  gave the original (keys, indexes, billing), read back from the deployment; nothing here
  restates ``terraform/modules``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from botocore.config import Config

from pipelines_local.infra.stack import UpResult
from pipelines_local.runtime.context import LambdaContext
from pipelines_local.runtime.discovery import FunctionConfig
from pipelines_local.workspace import Workspace

# The deployed functions' environments, with quicker write retries than they have on AWS.
FAST_WRITE_RETRIES = {
    "WRITE_MAX_ATTEMPTS": "3",
    "WRITE_BACKOFF_BASE_MS": "1",
    "WRITE_BACKOFF_MAX_MS": "2",
}
CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"})
_TABLE_FIELDS = ("KeySchema", "AttributeDefinitions")
_INDEX_FIELDS = ("IndexName", "KeySchema", "Projection")


@dataclass
class Isolated:
    """One function's Terraform environment, on copies of what it reads and writes."""

    env: dict[str, str]
    tables: dict[str, str] = field(default_factory=dict)  # projection -> copy's name
    buckets: dict[str, str] = field(default_factory=dict)  # purpose -> copy's name
    topics: dict[str, str] = field(default_factory=dict)  # key -> copy's ARN
    database: str | None = None  # the copy of the lake's Glue database (empty: no tables)


@dataclass
class DeployedStack:
    """The session's applied workspace."""

    up: UpResult
    workspace: Workspace
    _functions: dict[str, FunctionConfig] = field(default_factory=dict, repr=False)

    @property
    def endpoint_url(self) -> str:
        assert self.workspace.endpoint_url is not None
        return self.workspace.endpoint_url

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.workspace.outputs)

    def client(self, service: str) -> Any:
        return self.workspace.client(service, config=CLIENT_CONFIG)

    # --- the functions as deployed ------------------------------------------------------

    def function_config(self, name: str) -> FunctionConfig:
        """A deployed function's configuration (``projector``, ``alerter``, ``lake-writer``)."""
        if name not in self._functions:
            config = self.client("lambda").get_function_configuration(
                FunctionName=self.workspace.function(name)
            )
            self._functions[name] = FunctionConfig.from_api(config)
        return self._functions[name]

    def function_env(self, name: str) -> dict[str, str]:
        return dict(self.function_config(name).environment)

    def context(self, name: str) -> LambdaContext:
        """The Lambda context the deployed function is invoked with."""
        return LambdaContext(self.function_config(name))

    # --- isolated copies --------------------------------------------------------------

    @cached_property
    def table_definitions(self) -> dict[str, dict[str, Any]]:
        """``CreateTable`` arguments of every deployed table, by projection, as deployed."""
        dynamodb = self.client("dynamodb")
        definitions = {}
        for kind, name in self.workspace.output("table_names").items():
            table = dynamodb.describe_table(TableName=name)["Table"]
            definition: dict[str, Any] = {k: table[k] for k in _TABLE_FIELDS}
            definition["BillingMode"] = table["BillingModeSummary"]["BillingMode"]
            indexes = table.get("GlobalSecondaryIndexes") or []
            if indexes:
                definition["GlobalSecondaryIndexes"] = [
                    {k: index[k] for k in _INDEX_FIELDS} for index in indexes
                ]
            definitions[kind] = definition
        return definitions

    def isolated(
        self,
        function: str,
        suffix: str | None = None,
        client: Callable[[str], Any] | None = None,
    ) -> Isolated:
        """``function``'s environment, its tables, buckets and topics copied under ``suffix``.

        ``client`` builds the clients the copies are made with: the emulator's by default,
        or moto in-process for the contract tests' in-process half.
        """
        suffix = suffix or uuid.uuid4().hex[:8]
        make = client or self.client
        tables = {name: kind for kind, name in self.workspace.output("table_names").items()}
        buckets = {name: kind for kind, name in self.workspace.output("bucket_names").items()}
        topics = {arn: kind for kind, arn in self.workspace.output("topic_arns").items()}
        isolated = Isolated(self.function_env(function))
        database = self.workspace.glue_database
        for variable, value in list(isolated.env.items()):
            if value == database and variable == "GLUE_DATABASE":
                copy = f"{value}_{suffix}"
                make("glue").create_database(DatabaseInput={"Name": copy})
                isolated.database = copy
            elif value in tables:
                kind = tables[value]
                copy = f"{value}-{suffix}"
                make("dynamodb").create_table(TableName=copy, **self.table_definitions[kind])
                isolated.tables[kind] = copy
            elif value in buckets:
                kind = buckets[value]
                copy = f"{value[:50]}-{suffix}"
                make("s3").create_bucket(Bucket=copy)
                isolated.buckets[kind] = copy
            elif value in topics:
                kind = topics[value]
                name = value.rsplit(":", 1)[-1]
                copy = make("sns").create_topic(Name=f"{name}-{suffix}")["TopicArn"]
                isolated.topics[kind] = copy
            else:
                continue
            isolated.env[variable] = copy
        return isolated


def _all(client: Any, operation: str, key: str, field: str | None = None) -> list[str]:
    """Every name an AWS list operation pages through (``field`` of each item, if given)."""
    items = [
        item for page in client.get_paginator(operation).paginate() for item in page.get(key, [])
    ]
    return [item[field] if field else item for item in items]


def resources_named(client: Callable[[str], Any], prefix: str) -> dict[str, list[str]]:
    """Everything on an endpoint whose name carries ``prefix`` (a workspace's name prefix)."""
    glue = client("glue")
    found = {
        "streams": _all(client("kinesis"), "list_streams", "StreamNames"),
        "tables": _all(client("dynamodb"), "list_tables", "TableNames"),
        "buckets": [b["Name"] for b in client("s3").list_buckets()["Buckets"]],
        "queues": _all(client("sqs"), "list_queues", "QueueUrls"),
        "topics": _all(client("sns"), "list_topics", "Topics", "TopicArn"),
        "databases": [
            n.replace("_", "-") for n in _all(glue, "get_databases", "DatabaseList", "Name")
        ],
        "workgroups": [w["Name"] for w in client("athena").list_work_groups()["WorkGroups"]],
        "alarms": _all(client("cloudwatch"), "describe_alarms", "MetricAlarms", "AlarmName"),
        "dashboards": _all(
            client("cloudwatch"), "list_dashboards", "DashboardEntries", "DashboardName"
        ),
        "functions": _all(client("lambda"), "list_functions", "Functions", "FunctionName"),
        "roles": _all(client("iam"), "list_roles", "Roles", "RoleName"),
        "aliases": _all(client("kms"), "list_aliases", "Aliases", "AliasName"),
    }
    return {kind: [n for n in names if prefix in n] for kind, names in found.items()}
