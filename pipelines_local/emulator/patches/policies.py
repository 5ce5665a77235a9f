"""Resource policies: a condition on a key the request does not carry does not match."""

from __future__ import annotations

from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from pipelines_local.emulator.patches.base import Patch, Patcher


def _install_absent_keys_do_not_match(patcher: Patcher) -> None:
    """A statement with a condition on a context key the request lacks does not apply.

    AWS: "If the key that you specify in a policy condition is not present in the request
    context, the values do not match" (unless the operator ends in ``IfExists`` or is
    ``Null``), so the statement neither allows nor denies. moto 5.2.5 evaluates conditions only
    on the few keys it knows and treats every other condition as satisfied; the standard TLS-only
    bucket policy (``Deny`` when ``aws:SecureTransport`` is ``false``) therefore refuses every
    object write on the emulator, where AWS, reached over TLS, allows it.
    """
    is_action_permitted = IAMPolicyStatement.is_action_permitted

    def permitted(
        self: IAMPolicyStatement,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> Any:
        conditions = self._statement.get("Condition") or {}
        present = incoming_condition_values or {}
        for operator, keys in conditions.items():
            if operator.endswith("IfExists") or operator == "Null":
                continue
            if not any(key in present for key in keys):
                return PermissionResult.NEUTRAL
        return is_action_permitted(self, action, resource, principal, incoming_condition_values)

    patcher.replace(IAMPolicyStatement, "is_action_permitted", permitted)


ABSENT_CONDITION_KEYS = Patch(
    name="policy_absent_condition_keys",
    restores="a policy condition on a key absent from the request does not match",
    install=_install_absent_keys_do_not_match,
)
