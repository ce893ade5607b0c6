"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    """The published API contracts, kept beside the repository in ../shared/contracts."""
    path = (REPO_ROOT / ".." / "shared" / "contracts").resolve()
    if not path.is_dir():
        pytest.fail(f"API contracts not found at {path} (expected ../shared/contracts beside the repository)")
    return path
