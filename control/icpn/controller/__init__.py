"""The icpn controller: intent → desired entries (:mod:`.render`), reconciliation against
what each switch holds (:mod:`.reconcile`), and the multi-switch asyncio controller
(:mod:`.core`)."""

from icpn.controller.core import Controller, SwitchStatus, UnreachableError
from icpn.controller.reconcile import Plan, ReconcileError, plan, read_state, reconcile
from icpn.controller.render import RenderError, SwitchConfig, render

__all__ = [
    "Controller",
    "Plan",
    "ReconcileError",
    "RenderError",
    "SwitchConfig",
    "SwitchStatus",
    "UnreachableError",
    "plan",
    "read_state",
    "reconcile",
    "render",
]
