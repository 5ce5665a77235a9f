"""Function output goes to the function's log, and EMF metrics are read from it, as on AWS."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from pipelines_local.runtime.logs import FunctionOutput


def test_function_output_goes_to_its_log_and_emf_metrics_are_summed(tmp_path: Path) -> None:
    output = FunctionOutput(tmp_path)
    metrics = Metrics(namespace="Pipelines", service="projector")
    with output.installed():
        for value in (3, 4):
            with output.function("pipelines-local-projector"):
                print("a log line")
                metrics.add_metric(name="EventsProjected", unit=MetricUnit.Count, value=value)
                metrics.flush_metrics()
                with single_metric(
                    name="EventsProjected",
                    unit=MetricUnit.Count,
                    value=value,
                    namespace="Pipelines",
                    default_dimensions={"EventType": "MetricRecorded"},
                ):
                    pass
        print("runtime's own output")
    assert sys.stdout is not output

    log = (tmp_path / "pipelines-local-projector.log").read_text().splitlines()
    assert log.count("a log line") == 2
    assert any(json.loads(line).get("EventsProjected") == [3.0] for line in log if "_aws" in line)
    assert output.metrics.total("EventsProjected") == 7
    assert output.metrics.by_dimension("EventsProjected", "EventType") == {"MetricRecorded": 7}


def test_without_a_log_directory_output_is_dropped_but_metrics_are_kept() -> None:
    output = FunctionOutput(None)
    with output.installed(), output.function("f"):
        print(json.dumps({"_aws": {"CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]],
              "Metrics": [{"Name": "M"}]}]}, "M": [1, 2]}))  # fmt: skip
    assert output.metrics.total("M") == 3
