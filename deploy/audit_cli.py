"""`porchlight audit ...`: what auditors run against the event history."""

from __future__ import annotations

import typer

from deploy.audit_verify import verify

audit_app = typer.Typer(help="Audit the event history: verify its tamper-evidence chain.", no_args_is_help=True)
audit_app.command("verify")(verify)
