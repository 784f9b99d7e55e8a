"""The registry's JSON API, one router per sub-domain."""

from service.api.registry import clues, ledger, lifecycle, rules, supervision

ROUTERS = (clues.router, lifecycle.router, rules.router, supervision.router, ledger.router)
