"""`porchlight dev`'s generated secrets are readable by their owner only, from the first byte."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from deploy.dev import _secrets

# Audit hooks cannot be removed; this one only looks while `_watching` names a directory.
_watching: dict[str, object] = {"dir": None, "modes": [], "busy": False}


def _record_modes(event: str, _args: tuple) -> None:
    """At every audited step (open, write-through chmod, rename...), note the mode of every
    file in the watched directory, as another user could have seen it at that moment."""
    directory = _watching["dir"]
    if directory is None or _watching["busy"]:
        return
    _watching["busy"] = True
    try:
        for entry in os.scandir(directory):
            if entry.is_file():
                _watching["modes"].append((event, entry.name, stat.S_IMODE(entry.stat().st_mode)))
    finally:
        _watching["busy"] = False


sys.addaudithook(_record_modes)


def _write_secrets_watched(data_dir: Path) -> list[tuple[str, str, int]]:
    old_umask = os.umask(0)  # the most permissive umask a person might have
    _watching.update(dir=str(data_dir), modes=[])
    try:
        _secrets(data_dir)
    finally:
        _watching["dir"] = None
        os.umask(old_umask)
    return list(_watching["modes"])


def test_the_secrets_file_is_never_readable_by_others_while_it_is_written(tmp_path):
    first = _write_secrets_watched(tmp_path)
    assert first, "the audit hook saw no step of the write"
    second = _write_secrets_watched(tmp_path)  # a restart rewrites it: same rule
    exposed = [(event, name, oct(mode)) for event, name, mode in first + second if mode & 0o077]
    assert not exposed, f"secrets readable by group or others during the write: {exposed}"
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_secrets_are_kept_across_starts_and_only_the_file_is_left(tmp_path):
    first = _secrets(tmp_path)
    assert _secrets(tmp_path) == first
    assert len(first["PORCHLIGHT_SECRET_KEY"]) >= 32 and len(first["STAFF_JWT_SECRET"]) >= 32
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]
