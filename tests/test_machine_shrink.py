"""A failing KernelMachine run shrinks to its few essential steps, measured by
benchmarks/machine_shrink.py itself (so the script is exercised as it is documented).

Nothing here looks at a time.  The step counts are deterministic: the benchmark runs with
``derandomize``, and ``report_multiple_bugs=False`` (MACHINE_SETTINGS) takes hypothesis's
only clock-bound choice, how long to search on after the first failure, away.  Each
machine's class name seeds its path; the ``Shared`` machine's own seed finds its failure
in a few dozen runs, which keeps the test quick (the script's ``--seeds`` runs others).  It
runs in a fresh interpreter, as the script does: inside the whole suite the same seed
walks another path (what else is imported shifts hypothesis's choices), one that takes a
thousand runs to find the failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from qnxsim.strategies import MACHINE_SETTINGS

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "machine_shrink.py"


def measure_fresh(machine: str) -> dict[str, Any]:
    """``measure`` of the script's machine ``machine``, in a fresh interpreter (see above)."""
    code = f"import json, machine_shrink as ms\nprint(json.dumps(ms.measure(ms.{machine}, 30)))\n"
    root = SCRIPT.parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(SCRIPT.parent)])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def steps_of(log: str) -> list[str]:
    return [line for line in log.splitlines() if line != "state.teardown()"]


def test_machine_settings_report_the_first_failure_alone() -> None:
    assert MACHINE_SETTINGS.report_multiple_bugs is False
    assert MACHINE_SETTINGS.deadline is None


def test_a_broken_trivial_belief_shrinks_to_one_step_after_the_first_mapping() -> None:
    """Two mappings take one step after the first: another mmap, or a munmap that cuts
    the first in two (which needs it three pages long)."""
    r = measure_fresh("Trivial")
    assert r["steps"] == 2, r["log"]
    first, second = steps_of(r["log"])
    assert first.startswith("procs_0 = state.first_mapping(pages="), r["log"]
    assert "mmap(" in second or "munmap(" in second, r["log"]
    assert r["shrink_runs"] > 0 and r["find_runs"] >= 1


def test_shared_memory_write_and_fork_shrink_to_at_most_five_steps() -> None:
    """The issue's target: "a byte written into shared memory is never seen by a second
    process" is broken by a shared mapping, a write and a fork; the run shrinks to those
    and the first mapping, every argument at its simplest."""
    r = measure_fresh("Shared")
    steps = steps_of(r["log"])
    assert r["steps"] == len(steps) <= 5, r["log"]
    assert any("fork(" in s for s in steps), r["log"]
    assert any("write_memory(" in s for s in steps), r["log"]
    assert any("shared=True" in s or "shared-anon" in s for s in steps), r["log"]
    assert all("pages=1" in s for s in steps if "pages=" in s), r["log"]
