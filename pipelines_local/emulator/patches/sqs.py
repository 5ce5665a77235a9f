"""SQS: queue attributes read and write as on AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.sqs.models import Queue

from pipelines_local.emulator.patches.base import Patch, Patcher


def _install_queue_attributes(patcher: Patcher) -> None:
    """Keep a queue's policy across ``SetQueueAttributes``; return ``RedrivePolicy`` compact.

    AWS changes only the attributes a ``SetQueueAttributes`` call names: a call without ``Policy``
    leaves the queue policy alone (an empty ``Policy`` removes it). moto 5.2.5 resets the policy
    on every call. AWS also returns ``RedrivePolicy`` as compact JSON
    (``{"deadLetterTargetArn":"...","maxReceiveCount":5}``) where moto adds spaces after the
    separators; Terraform then keeps planning a change for queues with a redrive policy.
    """
    set_attributes = Queue._set_attributes
    read_attributes: Callable[[Queue], dict[str, Any]] = Queue.__dict__["attributes"].fget

    def _set_attributes(self: Queue, attributes: dict[str, Any], now: float | None = None) -> None:
        # Queue.__init__ always passes "Policy" (possibly None); only SetQueueAttributes omits it.
        if "Policy" not in attributes and hasattr(self, "_policy_json"):
            attributes = {**attributes, "Policy": self.policy}
        set_attributes(self, attributes, now)

    def attributes(self: Queue) -> dict[str, Any]:
        result = read_attributes(self)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        return result

    patcher.replace(Queue, "_set_attributes", _set_attributes)
    patcher.replace(Queue, "attributes", property(attributes))


QUEUE_ATTRIBUTES = Patch(
    name="sqs_queue_attributes",
    restores="SetQueueAttributes keeps the policy it was not given; RedrivePolicy is compact JSON",
    install=_install_queue_attributes,
)
