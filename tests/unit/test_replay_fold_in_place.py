"""Replay lets the rules change its rows in place (`owned`); the live projector's rows are copied.
Both must end in the same row, and a row not handed over must be left as it was."""

from __future__ import annotations

import copy
import itertools
import uuid
from datetime import timedelta

from projections import status_rows
from projections.status_rows import Fact
from services.invite_service.stored_facts import _uuid_from_hex
from tests.unit.test_status_rows import ACCOUNT, T0, created, sent, shared


def _facts():
    signed = Fact("SignedIn", ACCOUNT, ACCOUNT, "ws", T0 + timedelta(hours=1), "client",
                  {"at": T0 + timedelta(hours=1), "method": "magic_link"})
    failed = Fact("VerificationFailed", ACCOUNT, ACCOUNT, "ws", T0 + timedelta(hours=2), "client", {"method": "code"})
    disabled = Fact("AccessDisabled", ACCOUNT, ACCOUNT, "ws", T0 + timedelta(hours=3), "staff-2",
                    {"at": T0 + timedelta(hours=3), "reason": "left"})
    return [shared("T-1", T0 - timedelta(days=1)), sent(), created(), shared("T-2", T0), signed, failed, disabled]


def _fold(facts, owned: bool):
    rows: dict = {}
    for fact in facts:
        for table, key, apply in status_rows.effects(fact):
            before = rows.get((table, key))
            kept = copy.deepcopy(before)
            after = apply(before, owned) if owned else apply(before)
            if not owned:
                assert before == kept  # a row not handed over is left as it was
            if after is not None:
                rows[(table, key)] = after
    return rows


def test_folding_in_place_ends_in_the_same_rows_as_copying():
    for order in itertools.permutations(_facts()[:4]):
        facts = [*order, *_facts()[4:]]
        assert _fold(facts, owned=True) == _fold(facts, owned=False)


def test_stored_uuid_hex_decodes_to_the_same_uuid():
    for value in (uuid.uuid4(), uuid.uuid5(uuid.NAMESPACE_URL, "x"), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)):
        decoded = _uuid_from_hex(value.hex)
        assert decoded == value and hash(decoded) == hash(value) and str(decoded) == str(value)
        assert decoded.is_safe == value.is_safe and {decoded: 1}[value] == 1
