"""Deploying a function and its event source mappings on the emulator, as Terraform would."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines_local.packaging import LambdaRuntime
from pipelines_local.runtime import LocalRuntime, RuntimeOptions

HANDLERS = "tests.integration.runtime_handlers"
FAST = RuntimeOptions(retry_base_delay=0.01, retry_max_delay=0.05, idle_sleep=0.01)


class RuntimeStack:
    """A stream or queue, a function and its mapping, all named with a fresh prefix."""

    handler_module: str | None = HANDLERS
    function_timeout = 30
    function_memory = 256

    def __init__(self, aws_client: Callable[[str], Any], endpoint_url: str, tmp_path: Path) -> None:
        self.client = aws_client
        self.endpoint_url = endpoint_url
        self.prefix = f"rt{uuid.uuid4().hex[:8]}-"
        self.checkpoint_path = tmp_path / "runtime" / "checkpoints.json"
        self.kinesis = aws_client("kinesis")
        self.sqs = aws_client("sqs")
        self.lam = aws_client("lambda")
        role = aws_client("iam").create_role(
            RoleName=f"{self.prefix}role", AssumeRolePolicyDocument=json.dumps({})
        )
        self.role_arn: str = role["Role"]["Arn"]

    def stream(self, shards: int = 1) -> str:
        name = f"{self.prefix}stream"
        self.kinesis.create_stream(StreamName=name, ShardCount=shards)
        summary = self.kinesis.describe_stream_summary(StreamName=name)
        self.stream_name = name
        arn: str = summary["StreamDescriptionSummary"]["StreamARN"]
        return arn

    def queue(self, name: str, **attributes: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=f"{self.prefix}{name}", Attributes=attributes)[
            "QueueUrl"
        ]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, arn["Attributes"]["QueueArn"]

    def function(
        self,
        handler: str,
        env: dict[str, str] | None = None,
        timeout: int | None = None,
        name: str = "fn",
    ) -> str:
        """A function (moto keeps it, never runs it) whose configuration names ``handler``.

        ``handler`` is a function of :attr:`handler_module`, or a full handler string when
        the stack's ``handler_module`` is ``None``.
        """
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("handler.py", "")
        self.function_name = f"{self.prefix}{name}"
        response = self.lam.create_function(
            FunctionName=self.function_name,
            Runtime=LambdaRuntime.declared().runtime,
            Role=self.role_arn,
            Handler=f"{self.handler_module}.{handler}" if self.handler_module else handler,
            Code={"ZipFile": code.getvalue()},
            Timeout=timeout or self.function_timeout,
            MemorySize=self.function_memory,
            Environment={"Variables": env or {}},
        )
        arn: str = response["FunctionArn"]
        return arn

    def mapping(self, source_arn: str, **settings: Any) -> str:
        if ":kinesis:" in source_arn:
            settings.setdefault("StartingPosition", "TRIM_HORIZON")
        response = self.lam.create_event_source_mapping(
            FunctionName=self.function_name, EventSourceArn=source_arn, **settings
        )
        uuid_: str = response["UUID"]
        return uuid_

    def put(self, *payloads: str, partition_key: str = "k") -> list[str]:
        """Put plain records, one by one, in order; return their sequence numbers."""
        return [
            self.kinesis.put_record(
                StreamName=self.stream_name, Data=payload.encode(), PartitionKey=partition_key
            )["SequenceNumber"]
            for payload in payloads
        ]

    def runtime(self, **kwargs: Any) -> LocalRuntime:
        kwargs.setdefault("options", FAST)
        return LocalRuntime.connect(
            self.endpoint_url,
            function_prefix=self.prefix,
            checkpoint_path=self.checkpoint_path,
            **kwargs,
        )

    def destination_messages(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return messages
            for message in got["Messages"]:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
