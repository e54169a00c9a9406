"""Workspace: the portal settings staff configure, and the gate every invite passes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from services.invite_service.domain import ids
from services.invite_service.domain.errors import PlanRequired, PortalDisabled, UnknownRole

BUILT_IN_ROLES = ("owner", "charter_client", "customer")

DEFAULTS: dict[str, Any] = {
    "name": "",
    "portal_enabled": True,
    "plan": "free",
    "auto_invite_on_first_share": False,
    "invite_ttl_hours": 168,
    "sign_in_method": "magic_link",
    "branding": {"sender_name": None, "logo_url": None, "brand_color": "#1F6FEB"},
    "team_notify_email": None,
    "roles": [],
    "portal_url": None,
    "portal_description": None,
    "reply_to": None,
    "time_zone": "UTC",
    "magic_link_ttl_minutes": 15,
}


def _merge(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Settings with `changes` applied; branding merges field by field."""
    merged = {**current, **changes}
    if "branding" in changes:
        merged["branding"] = {**current.get("branding", {}), **(changes["branding"] or {})}
    return merged


class Workspace(Aggregate):
    @staticmethod
    def create_id(slug: str) -> UUID:
        return ids.workspace_id(slug)

    @event("WorkspaceCreated")
    def __init__(self, slug: str, settings: dict[str, Any], actor: dict[str, Any]) -> None:
        self.slug = slug
        self.settings = _merge(DEFAULTS, settings)

    @event("WorkspaceSettingsChanged")
    def change_settings(self, changes: dict[str, Any], actor: dict[str, Any]) -> None:
        self.settings = _merge(self.settings, changes)

    def changes_from(self, wanted: dict[str, Any]) -> dict[str, Any]:
        """Only the settings that differ, so a repeated PUT records nothing."""
        merged = _merge(self.settings, wanted)
        return {k: merged[k] for k in wanted if self.settings.get(k) != merged[k]}

    def check_can_invite(self, role: str) -> None:
        self.check_can_send()
        accepted = [*BUILT_IN_ROLES, *self.settings.get("roles", [])]
        if role not in accepted:
            raise UnknownRole(
                f"The role {role!r} is not defined in this workspace; it accepts {', '.join(accepted)}.",
                accepted_roles=accepted,
            )

    def check_can_send(self) -> None:
        """The gate for any invite email, also a resend: the role was checked when the account was made."""
        if not self.settings["portal_enabled"]:
            raise PortalDisabled()
        if self.settings["plan"] != "pro":
            raise PlanRequired()

    @property
    def sender(self) -> dict[str, Any]:
        """What an invitation is sent as: recorded on the invitation, for the email and for audit."""
        branding = self.settings["branding"]
        return {
            "workspace_name": self.settings["name"] or self.slug,
            "sender_name": branding.get("sender_name") or self.settings["name"] or self.slug,
            "logo_url": branding.get("logo_url"),
            "brand_color": branding.get("brand_color") or DEFAULTS["branding"]["brand_color"],
            "reply_to": self.settings.get("reply_to"),
            "portal_description": self.settings.get("portal_description"),
            "portal_url": self.settings.get("portal_url"),
            "time_zone": self.settings.get("time_zone") or "UTC",
            "team_notify_email": self.settings.get("team_notify_email"),
        }
