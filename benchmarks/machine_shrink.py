"""How long KernelMachine takes to find and to shrink a failing run, and how short the
run ends up.

    python benchmarks/machine_shrink.py [--steps N]

Two machines with a wrong belief built in: ``trivial`` (no process ever has two
mappings) and ``shared`` (a byte written into shared memory is never seen by a second
process: broken by mmap of shared memory, a write and a fork).  Each runs with
``MACHINE_SETTINGS`` and a fixed seed (``derandomize``); the script prints the time to the
first failure, the time and number of runs spent shrinking, and the steps left.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from qnxsim.constants import PROT_READ
from qnxsim.strategies import MACHINE_SETTINGS, KernelMachine


class _Timed(KernelMachine):
    runs = 0
    first_failure: tuple[float, int] | None = None

    def __init__(self) -> None:
        super().__init__()
        type(self).runs += 1

    def belief(self) -> None:
        raise NotImplementedError

    def after_step(self) -> None:
        super().after_step()
        try:
            self.belief()
        except AssertionError:
            if type(self).first_failure is None:
                type(self).first_failure = (time.perf_counter(), type(self).runs)
            raise


class Trivial(_Timed):
    """Wrong: no process ever has two mappings."""

    def belief(self) -> None:
        for proc in self.processes:
            assert len(proc.mappings()) < 2, f"pid {proc.pid} has two mappings"


class Shared(_Timed):
    """Wrong: a byte written into shared memory is never seen by a second process."""

    def belief(self) -> None:
        seen: dict[int, list[int]] = {}
        for proc in self.processes:
            for m in proc.mappings():
                readable = m.kind == "shared-anon" and m.prot & PROT_READ
                if readable and any(proc.read_memory(m.start, m.size)):
                    seen.setdefault(m.start, []).append(proc.pid)
        assert all(len(pids) < 2 for pids in seen.values()), f"shared bytes seen by {seen}"


def measure(machine: type[_Timed], steps: int) -> dict[str, Any]:
    chosen = settings(MACHINE_SETTINGS, max_examples=5000, derandomize=True, database=None,
                      stateful_step_count=steps, print_blob=False)  # fmt: skip
    start = time.perf_counter()
    notes: list[str] = []
    try:
        run_state_machine_as_test(machine, settings=chosen)
    except AssertionError as err:
        notes = list(getattr(err, "__notes__", []))
    end = time.perf_counter()
    assert machine.first_failure is not None, "the belief was never broken"
    found, runs = machine.first_failure
    log = [n for n in notes if n.startswith(("state.", "procs_"))]
    steps_left = [n for n in log if n != "state.teardown()"]
    return {
        "find_s": found - start,
        "shrink_s": end - found,
        "shrink_runs": machine.runs - runs,
        "steps": len(steps_left),
        "log": "\n".join(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="stateful_step_count")
    args = parser.parse_args()
    for machine in (Trivial, Shared):
        r = measure(machine, args.steps)
        print(f"{machine.__name__}: found in {r['find_s']:.1f} s; shrunk in {r['shrink_s']:.1f} s "
              f"({r['shrink_runs']} runs) to {r['steps']} steps:\n{r['log']}\n")  # fmt: skip


if __name__ == "__main__":
    main()
