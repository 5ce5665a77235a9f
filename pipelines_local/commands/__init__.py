"""Subcommands of the ``pipeline`` CLI, one module per group."""
