"""`PUT`/`GET /v1/workspaces/{ws}`: portal settings, each change recorded with who made it."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response, status

from services.common.problems import BODY_ERRORS, STAFF_AUTH_ERRORS, Problem, problem_responses
from services.invite_service.api.deps import Access, Settings, StaffAdmin, StaffReader
from services.invite_service.api.schemas import Slug, WorkspaceOut, WorkspaceSettingsIn
from services.invite_service.domain.workspace import Workspace

router = APIRouter(prefix="/v1/workspaces", tags=["workspaces"])


def workspace_out(workspace: Workspace) -> WorkspaceOut:
    return WorkspaceOut(slug=workspace.slug, **workspace.settings)


@router.put(
    "/{ws}",
    response_model=WorkspaceOut,
    summary="Create or update the workspace's portal settings",
    responses={
        201: {"model": WorkspaceOut, "description": "Created"},
        **problem_responses({
            **STAFF_AUTH_ERRORS,
            **BODY_ERRORS,
            403: "Only owners and admins change settings (`forbidden_role`)",
            422: "A setting out of range or unknown (`validation_error`); a portal_url that is not https "
            "outside `porchlight dev` (`insecure_portal_url`)",
        }),
    },
)
async def put_workspace(
    ws: Slug, body: WorkspaceSettingsIn, staff: StaffAdmin, access: Access, response: Response, config: Settings
) -> WorkspaceOut:
    # Only what the caller named (nested too), so a PUT of one field leaves the rest alone.
    settings = body.model_dump(exclude_unset=True)
    # Signed-in clients are sent there with a one-time code: never over plain http, but in dev.
    portal_url = settings.get("portal_url")
    if portal_url and not portal_url.startswith("https://") and not config.allow_http_portal_url:
        raise Problem(422, "insecure_portal_url", "Insecure portal URL",
                      "portal_url must be an https URL (plain http only under `porchlight dev`).")
    configured = await access.configure_workspace(ws, settings, staff.actor)
    if configured.created:
        response.status_code = status.HTTP_201_CREATED
    return workspace_out(configured.workspace)


@router.get("/{ws}", response_model=WorkspaceOut, summary="The workspace's portal settings",
            responses=problem_responses(STAFF_AUTH_ERRORS))
def get_workspace(staff: StaffReader, access: Access, ws: str = Path()) -> WorkspaceOut:
    return workspace_out(access.get_workspace(ws))
