"""Plumbing every process shares: settings, database and broker connections, logging.

Nothing here knows about the domain; services import it, it imports no service.
"""
