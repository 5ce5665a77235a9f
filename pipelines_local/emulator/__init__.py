"""The embedded AWS emulator: moto's server, patched back to AWS's behaviour, in its own process.

Typical use::

    with start_emulator() as emu:  # a free loopback port, stopped on exit
        kinesis = boto3.client("kinesis", endpoint_url=emu.endpoint_url, ...)

``python -m pipelines_local.emulator serve --host H --port P`` is the process :func:`start_emulator`
runs; the patches it applies are listed in :mod:`pipelines_local.emulator.patches` and
``docs/adr/0001-emulator-patches.md``.
"""

from pipelines_local.emulator.launcher import (
    EmulatorError,
    EmulatorProcess,
    emulator_env,
    reset_emulator,
    start_emulator,
    stop_emulator,
)

__all__ = [
    "EmulatorError",
    "EmulatorProcess",
    "emulator_env",
    "reset_emulator",
    "start_emulator",
    "stop_emulator",
]
