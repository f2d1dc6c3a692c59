"""Shared by the edge's tests: a spool key (the outbox and the recordings are always sealed)."""

from __future__ import annotations

import pytest

from edge_capture.sealing.keys import Keyring


@pytest.fixture
def spool_keys() -> Keyring:
    return Keyring.generate()
