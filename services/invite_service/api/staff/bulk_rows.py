"""A bulk invite's body, JSON or CSV, as one raw row per invitation in input order.

JSON: `{"invitations": [ {...}, ... ]}`, each row the body of a single invite.

CSV (`Content-Type: text/csv`, UTF-8, a byte-order mark is fine): a header row naming the
fields of a single invite, in any order; then one contact per line. An empty cell leaves
the field out. Two fields are lists and take `;` between items:

    email,name,role,phone,resources,channels
    ana@example.com,Ana Lima,charter_client,+14155550123,trip:T1;project:P2,email;sms

`resources` items are `type:id` (the type before the first colon). Blank lines are
skipped (spreadsheets add them). A line with more cells than the header is an invalid row;
an unknown column, a file that is not UTF-8 or not CSV refuses the whole body.

Rows are validated later, one by one, with the single invite's model (bulk.py), so a bad
row is reported and never stops the others.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from services.common.problems import Problem
from services.invite_service.api.schemas import InvitationIn

MAX_ROWS = 10_000
FIELDS = tuple(InvitationIn.model_fields)
LIST_SEPARATOR = ";"


@dataclass(frozen=True)
class MalformedRow:
    """A CSV line that cannot be read as a row: reported as that row's error."""

    email: str | None
    message: str
    code: str = "malformed_row"


Row = dict[str, Any] | MalformedRow | Any  # JSON rows may be anything; validation says what is wrong


def _too_many(count: int) -> Problem:
    return Problem(422, "too_many_rows", "Too many rows", f"A bulk invite takes at most {MAX_ROWS:,} rows; this one has {count:,}.")


def rows_from_json(body: bytes) -> list[Row]:
    try:
        data = json.loads(body)
    except ValueError:  # also bytes that are not UTF-8
        raise Problem(400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.") from None
    if not isinstance(data, dict) or set(data) != {"invitations"} or not isinstance(data["invitations"], list):
        raise Problem(
            422, "validation_error", "Invalid request", 'The body must be {"invitations": [...]}, with no other field.'
        )
    if len(data["invitations"]) > MAX_ROWS:
        raise _too_many(len(data["invitations"]))
    return data["invitations"]


def _malformed_csv(detail: str) -> Problem:
    return Problem(400, "malformed_csv", "Malformed CSV", detail)


def rows_from_csv(body: bytes) -> list[Row]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _malformed_csv("The CSV is not UTF-8 text.") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise _malformed_csv("The CSV has no header row naming the fields (email, name, role, ...).")
        names = [cell.strip() for cell in header]
        _check_header(names)
        rows: list[Row] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            rows.append(_row(names, cells, reader.line_num))
            if len(rows) > MAX_ROWS:
                raise _too_many(len(rows) + sum(1 for c in reader if any(x.strip() for x in c)))
    except csv.Error as exc:
        raise _malformed_csv(f"Line {reader.line_num}: {exc}.") from None
    return rows


def _check_header(names: list[str]) -> None:
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise Problem(
            422, "unknown_column", "Unknown column",
            f"Unknown column(s): {', '.join(map(repr, unknown))}; the header names the fields of an invite: {', '.join(FIELDS)}.",
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _malformed_csv(f"The header names {', '.join(map(repr, repeated))} more than once.")


def _row(names: list[str], cells: list[str], line: int) -> Row:
    email = cells[names.index("email")].strip() if "email" in names and names.index("email") < len(cells) else None
    if len(cells) > len(names):
        return MalformedRow(email or None, f"Line {line} has {len(cells)} cells; the header names {len(names)}.")
    row: dict[str, Any] = {}
    for name, cell in zip(names, cells):
        value = cell.strip()
        if not value:
            continue
        if name == "resources":
            row[name] = [_resource(item) for item in _items(value)]
        elif name == "channels":
            row[name] = _items(value)
        else:
            row[name] = value
    return row


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]


def _resource(item: str) -> dict[str, str]:
    kind, _, ident = item.partition(":")
    return {"type": kind.strip(), "id": ident.strip()}
