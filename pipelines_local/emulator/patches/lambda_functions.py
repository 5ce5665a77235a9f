"""Lambda functions: the dead-letter and logging configurations read back."""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaFunction

from pipelines_local.emulator.patches.base import Patch, Patcher


def _install_function_configs_read_back(patcher: Patcher) -> None:
    """``DeadLetterConfig`` and ``LoggingConfig`` are kept and returned, as AWS does.

    AWS stores both with the function and returns them from ``GetFunction`` /
    ``GetFunctionConfiguration`` (``LoggingConfig`` always: ``Text`` format and the
    ``/aws/lambda/<name>`` log group unless set). moto 5.2.5 drops both, so every
    ``terraform plan`` after an apply wants to add them again.
    """
    init = LambdaFunction.__init__
    get_configuration = LambdaFunction.get_configuration
    update_configuration = LambdaFunction.update_configuration

    def __init__(self: LambdaFunction, account_id: str, spec: dict[str, Any], *args: Any,
                 **kwargs: Any) -> None:  # fmt: skip
        init(self, account_id, spec, *args, **kwargs)
        self.dead_letter_config = spec.get("DeadLetterConfig") or {}  # type: ignore[attr-defined]
        self.logging_config = _logging_config(self.function_name, spec.get("LoggingConfig"))  # type: ignore[attr-defined]

    def configuration(self: LambdaFunction, on_create: bool = False) -> dict[str, Any]:
        config: dict[str, Any] = get_configuration(self, on_create)
        dead_letter = getattr(self, "dead_letter_config", {})
        if dead_letter.get("TargetArn"):
            config["DeadLetterConfig"] = dead_letter
        config["LoggingConfig"] = getattr(
            self, "logging_config", _logging_config(self.function_name, None)
        )
        return config

    def update(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "DeadLetterConfig" in config_updates:
            self.dead_letter_config = config_updates["DeadLetterConfig"] or {}  # type: ignore[attr-defined]
        if "LoggingConfig" in config_updates:
            self.logging_config = _logging_config(  # type: ignore[attr-defined]
                self.function_name, config_updates["LoggingConfig"]
            )
        update_configuration(self, config_updates)
        return configuration(self)

    patcher.replace(LambdaFunction, "__init__", __init__)
    patcher.replace(LambdaFunction, "get_configuration", configuration)
    patcher.replace(LambdaFunction, "update_configuration", update)


def _logging_config(function_name: str, given: dict[str, Any] | None) -> dict[str, Any]:
    config = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function_name}"}
    config.update(given or {})
    if config["LogFormat"] == "JSON":
        config.setdefault("ApplicationLogLevel", "INFO")
        config.setdefault("SystemLogLevel", "INFO")
    return config


FUNCTION_CONFIGS_READ_BACK = Patch(
    name="lambda_function_configs_read_back",
    restores="a function's DeadLetterConfig and LoggingConfig are kept and read back",
    install=_install_function_configs_read_back,
)
