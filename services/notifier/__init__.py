"""The notifier: turns access events into branded messages and records each delivery.

Entry point: `services.notifier.main.run(settings)`; composition root: `create_notifier`.
"""
