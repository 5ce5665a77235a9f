"""Named queries: the SQL Terraform ships to the Athena workgroup, runnable locally too.

Each is a Terraform template under ``terraform/modules/catalog`` rendered with the
same variables the ``aws_athena_named_query`` resource passes to ``templatefile``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from pipelines_local.catalog import TABLES_JSON, table_name
from pipelines_local.query.errors import QueryError

CATALOG_MODULE = TABLES_JSON.parent

# name -> (template file, template variables); mirrors terraform/modules/catalog/main.tf.
NAMED_QUERIES: dict[str, tuple[str, dict[str, str]]] = {
    "daily_analytics": (
        "daily_analytics.sql",
        {"table": table_name("UserActivityRecorded")},
    ),
}

_INTERPOLATION = re.compile(r"(\$\$\{)|\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def render_template(text: str, variables: Mapping[str, str]) -> str:
    """Terraform ``templatefile`` interpolation: ``${name}`` substituted, ``$${`` -> ``${``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "${"
        name = match.group(2)
        if name not in variables:
            raise QueryError(f"template variable {name!r} has no value")
        return variables[name]

    return _INTERPOLATION.sub(substitute, text)


def named_query(name: str, module_dir: Path | None = None) -> str:
    """The SQL of the named query ``name``, rendered as Terraform renders it."""
    if name not in NAMED_QUERIES:
        known = ", ".join(sorted(NAMED_QUERIES))
        raise QueryError(f"no named query {name!r} (known: {known})")
    filename, variables = NAMED_QUERIES[name]
    path = (module_dir or CATALOG_MODULE) / filename
    try:
        text = path.read_text()
    except OSError as exc:
        raise QueryError(f"cannot read named query {name!r}: {exc}") from exc
    return render_template(text, variables)
