"""Fixtures the test modules share."""

from __future__ import annotations

import pytest

from qnxsim import Kernel, Process


@pytest.fixture
def k() -> Kernel:
    """A fresh default machine with 64 MiB of RAM."""
    return Kernel(ram=64 << 20)


@pytest.fixture
def p(k: Kernel) -> Process:
    """A root process in ``k`` with an empty address space (no image)."""
    return k.spawn(image=False)
