"""The local archive mirror starts empty with the table: after a restart, `signoff audit verify`
and the SLI queries see only the running stack's events, never a previous run's."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.stack import LocalStack

pytestmark = pytest.mark.integration


def test_a_previous_runs_archive_is_cleared_and_nothing_else(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    old = archive / "audit" / "dt=2026-01-01" / "cp-1" / "1.jsonl.gz"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"previous run")
    keep = archive / "README.txt"
    keep.write_text("not the mirror's")
    LocalStack(tmp_path / "cdk.out", archive_dir=archive)._clear_archive_mirror()
    assert not old.exists() and not (archive / "audit").exists()
    assert keep.read_text() == "not the mirror's"
