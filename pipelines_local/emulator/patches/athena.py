"""Athena: tags of untagged resources, and named queries that can be deleted."""

from __future__ import annotations

import json
from itertools import chain
from typing import Any

from moto.athena.models import AthenaBackend
from moto.athena.responses import AthenaResponse

from pipelines_local.emulator.patches.base import Patch, Patcher


def _install_untagged_resource_tags(patcher: Patcher) -> None:
    """``ListTagsForResource`` on an existing untagged resource answers with no tags.

    AWS answers ``{"Tags": []}`` for a workgroup, data catalog or capacity reservation that has no
    tags, and ``InvalidRequestException`` only when the resource does not exist. moto 5.2.5 says
    "does not exist" for every untagged resource, which breaks Terraform's refresh of an
    ``aws_athena_workgroup`` without tags.
    """
    list_tags = AthenaBackend.list_tags_for_resource

    def list_tags_for_resource(self: AthenaBackend, resource_arn: str) -> dict[str, Any] | None:
        tags: dict[str, Any] | None = list_tags(self, resource_arn)
        if tags is None and _athena_resource_exists(self, resource_arn):
            return {"Tags": []}
        return tags

    patcher.replace(AthenaBackend, "list_tags_for_resource", list_tags_for_resource)


def _athena_resource_exists(backend: AthenaBackend, resource_arn: str) -> bool:
    resources = chain(
        backend.work_groups.values(),
        backend.data_catalogs.values(),
        backend.capacity_reservations.values(),
    )
    return any(resource.arn == resource_arn for resource in resources)


def _install_named_query_deletion(patcher: Patcher) -> None:
    """``DeleteNamedQuery`` deletes; a missing named query "does not exist".

    AWS deletes the named query; ``GetNamedQuery`` and ``DeleteNamedQuery`` on an unknown id
    answer ``InvalidRequestException`` with "does not exist" in the message, which is how
    Terraform notices a named query is gone. moto 5.2.5 does not implement ``DeleteNamedQuery``
    (HTTP 500, so ``terraform destroy`` retries until it gives up) and answers ``GetNamedQuery``
    on an unknown id with HTTP 500 too.
    """
    get_named_query = AthenaResponse.get_named_query

    def delete_named_query_model(self: AthenaBackend, query_id: str) -> bool:
        return self.named_queries.pop(query_id, None) is not None

    def delete_named_query(self: AthenaResponse) -> tuple[str, dict[str, int]] | str:
        query_id = self._get_param("NamedQueryId")
        if not delete_named_query_model(self.athena_backend, query_id):
            return self.error(f"NamedQuery {query_id} does not exist", 400)
        return json.dumps({})

    def get_named_query_checked(self: AthenaResponse) -> tuple[str, dict[str, int]] | str:
        query_id = self._get_param("NamedQueryId")
        if self.athena_backend.get_named_query(query_id) is None:
            return self.error(f"NamedQuery {query_id} does not exist", 400)
        response: str = get_named_query(self)
        return response

    patcher.replace(AthenaBackend, "delete_named_query", delete_named_query_model)
    patcher.replace(AthenaResponse, "delete_named_query", delete_named_query)
    patcher.replace(AthenaResponse, "get_named_query", get_named_query_checked)


UNTAGGED_RESOURCE_TAGS = Patch(
    name="athena_untagged_resource_tags",
    restores="ListTagsForResource on an existing untagged Athena resource returns no tags",
    install=_install_untagged_resource_tags,
)

NAMED_QUERY_DELETION = Patch(
    name="athena_named_query_deletion",
    restores="DeleteNamedQuery deletes; Get/DeleteNamedQuery of an unknown id does not exist",
    install=_install_named_query_deletion,
)
