"""The roles, declared once: each role's map layers and actions. Everything else derives from
here: the Django groups and their permissions (synced by migrations, each freezing a snapshot
of this declaration: ``roles_snapshot``; ``manage.py roles_migration`` writes the next one),
which pages the home page offers (by permission, never by group name), who may dispatch.

A change here needs a new migration: tests/command/test_roles.py fails while the latest
migration's snapshot differs from the declaration.

This module imports no models (models import it for the permission list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from command.layers import LAYERS

# Where a role's layers apply until an administrator narrows them with grants in the database
# (command/access.py, AccessGrant): everywhere, or the user's own grid cells (a worker's cells;
# a big grid stands for its cells).
Area = Literal["everywhere", "own_cells"]
# How a role sees residents' and workers' personal data (sensitive fields) by default: masked
# (张*明, 138****5678: they see that there is a record, not who) or left out altogether.
# Unmasking one record with a stated purpose takes the action ``view_personal_data``.
PersonalData = Literal["masked", "omitted"]

# Actions a role may be granted, besides seeing layers: (codename, description).
ACTIONS: dict[str, str] = {
    "view_personal_data": "Can view residents' and workers' personal data (every view is logged)",
    "dispatch_incident": "Can dispatch, reassign, close and cancel incidents",
    "use_control_room": "Can use the control room wall",
    "use_police_map": "Can use the police map",
    "use_field_app": "Can use the field app",
    "read_supervision_tips": "Can read and answer the anonymous supervision tips",
    "manage_campaigns": "Can start and close door-to-door campaigns",
    "import_registry": "Can import the household and business registry",
    "use_resident_page": "Can use the resident page (own requests, notices)",
    "view_analysis": "Can view the analysis: grid-cell performance, camera coverage, period reports",
}
# Those that live on LayerAccess (the others on their model's Meta: dispatch_incident on Incident).
# Actions no other role holds, and that a superuser does not get by being one.
COMMITTEE_ONLY = ("read_supervision_tips",)
ACCESS_ACTIONS = (
    "view_personal_data",
    "use_control_room",
    "use_police_map",
    "use_field_app",
    "read_supervision_tips",
    "manage_campaigns",
    "import_registry",
    "use_resident_page",
    "view_analysis",
)


@dataclass(frozen=True)
class Role:
    name: str
    title_zh: str
    title_en: str
    layers: tuple[str, ...]
    actions: tuple[str, ...] = ()
    superuser: bool = False  # the admin role: staff and superuser (Django's admin site)
    area: Area = "everywhere"
    personal_data: PersonalData = "omitted"

    def codenames(self) -> tuple[str, ...]:
        """The permission codenames (app ``command``) of this role's group."""
        return tuple(sorted({*(LAYERS[name].permission_codename for name in self.layers), *self.actions}))


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        # Not the tips: only the committee reads them (command/services/tips.py refuses a superuser too).
        Role(
            "admin",
            "管理员",
            "Administrator",
            tuple(LAYERS),
            tuple(a for a in ACTIONS if a not in COMMITTEE_ONLY),
            superuser=True,
            personal_data="masked",
        ),
        Role(
            "operator",
            "指挥中心值班员",
            "Control room operator",
            tuple(LAYERS),
            (
                "view_personal_data",
                "dispatch_incident",
                "use_control_room",
                "use_field_app",
                "manage_campaigns",
                "import_registry",
                "view_analysis",
            ),
            personal_data="masked",
        ),
        Role(
            "team_lead",
            "网格长",
            "Team lead",
            tuple(LAYERS),
            ("view_personal_data", "dispatch_incident", "use_field_app", "manage_campaigns"),
            area="own_cells",  # their big grid (a big grid stands for its cells)
            personal_data="masked",
        ),
        Role(
            "grid_worker",
            "网格员",
            "Grid worker",
            (
                "cells",
                "roads",
                "buildings",
                "households",
                "persons",
                "businesses",
                "campaigns",
                "campaign_buildings",
                "campaign_targets",
                "cameras",
                "camera_cones",
                "incidents",
                "reports",
                "workers",
                "hotspots",
                "hexbins",
            ),
            ("view_personal_data", "use_field_app"),
            area="own_cells",  # their cells; AB-role cover of a neighbour's cell is a grant (command/access.py)
            personal_data="masked",
        ),
        Role(
            "police",
            "民警",
            "Police officer",
            (
                "cells",
                "roads",
                "buildings",
                "cameras",
                "camera_cones",
                "incidents",
                "hotspots",
                "hexbins",
                "coverage_gaps",
                "entrance_gaps",
                "workers",
            ),
            ("use_police_map",),
            personal_data="omitted",  # nothing of residents, not even masked; workers' names neither
        ),
        Role(
            "supervision_committee",
            "监督委员会",
            "Supervision committee",
            ("cells", "roads", "buildings", "incidents", "reports", "hotspots"),
            ("read_supervision_tips",),
            personal_data="masked",  # they check that requests are handled, not who made them
        ),
        # Residents sign in by phone (command/services/phone_login.py) and see their own requests only.
        Role("resident", "居民", "Resident", (), ("use_resident_page",), personal_data="omitted"),
    )
}

for _role in ROLES.values():  # a typo in a declaration fails at import, not in a migration
    unknown = set(_role.layers) - set(LAYERS) or set(_role.actions) - set(ACTIONS)
    if unknown:
        raise ValueError(f"role {_role.name}: unknown layers or actions {sorted(unknown)}")

ROLE_LAYERS: dict[str, tuple[str, ...]] = {name: role.layers for name, role in ROLES.items()}


def roles_snapshot() -> dict[str, list[str]]:
    """The declaration as a migration freezes it: role -> its permission codenames."""
    return {name: list(role.codenames()) for name, role in ROLES.items()}
