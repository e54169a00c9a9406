"""The Application's commands, one module per concern, mixed into `PortalAccess`.

Each mixin relies on what `PortalAccess` (application.py) provides: the library's
`repository`, `recorder` and `mapper`, `secret_key`, and `_commit(*aggregates, side_rows=())`,
the one way a command stores its changes, returning their notification-log position.
Commands are coroutines (they wait for their group commit on the event loop); reads that
only load aggregates stay plain functions, run in a thread by async callers.
"""
