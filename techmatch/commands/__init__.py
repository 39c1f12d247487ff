"""Command groups of the ``techmatch`` CLI beyond index/match/eval, one module per concern.

Each module exposes ``register(app)``; keeping them apart keeps cli.py small and lets each area
(triage, learning, service, benchmarks) own its commands.
"""

from __future__ import annotations

import importlib

import typer

MODULES = ("evaluation", "triage", "learning", "service", "users", "review", "operations")


def register_all(app: typer.Typer) -> None:
    for name in MODULES:
        module = importlib.import_module(f"techmatch.commands.{name}")
        module.register(app)
