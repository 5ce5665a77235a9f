"""The installed botocore speaks to each service in the protocol the pinned moto's server routes.

When botocore moves a service to another wire protocol (1.44.18 moved Athena from JSON to
REST-JSON), moto's server answers every call of that service with a bare 404 "Not yet
implemented", and the failures surface far from their cause. This test names it.
"""

from __future__ import annotations

import botocore.session
import pytest

# The services the project calls, and the protocol moto 5.2.5's server routes for each.
ROUTED = {
    "athena": "json",
    "cloudwatch": "smithy-rpc-v2-cbor",
    "dynamodb": "json",
    "events": "json",
    "glue": "json",
    "iam": "query",
    "kinesis": "json",
    "kms": "json",
    "lambda": "rest-json",
    "logs": "json",
    "s3": "rest-xml",
    "sns": "query",
    "sqs": "json",
    "sts": "query",
}


@pytest.mark.parametrize("service", sorted(ROUTED))
def test_botocore_speaks_the_protocol_the_emulator_routes(service: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    protocol = model.metadata["protocol"]

    assert protocol == ROUTED[service], (
        f"botocore {botocore.__version__} speaks {protocol} to {service}, but the emulator "
        f"(moto 5.2.5) routes {ROUTED[service]}: cap botocore in pyproject.toml below this "
        "version, or move the moto pin to a release that routes the new protocol"
    )
