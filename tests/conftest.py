"""Fixtures the test modules share, and the hypothesis profile of the suite.

The suite is deterministic: the ``qnxsim`` profile derandomizes every hypothesis test
and keeps no example database, so a run does not depend on what an earlier run found.
``--hypothesis-seed=N`` switches to ``qnxsim-seeded`` (random, from that seed) so that
other seeds can be explored; ``--hypothesis-profile`` still picks any profile.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest
from hypothesis import settings

from qnxsim import Kernel, Process
from qnxsim.pytest_plugin import kernel_for

settings.register_profile("qnxsim", derandomize=True, database=None)
settings.register_profile("qnxsim-seeded", derandomize=False, database=None)
settings.load_profile("qnxsim")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--hypothesis-profile", None):
        return
    if config.getoption("--hypothesis-seed", None) is not None:
        settings.load_profile("qnxsim-seeded")


@pytest.fixture
def k(request: pytest.FixtureRequest) -> Generator[Kernel, None, None]:
    """A fresh default machine with 64 MiB of RAM (``@pytest.mark.qnxsim`` changes it);
    its invariants are checked when the test ends."""
    yield from kernel_for(request, ram=64 << 20)


@pytest.fixture
def p(k: Kernel) -> Process:
    """A root process in ``k`` with an empty address space (no image)."""
    return k.spawn(image=False)
