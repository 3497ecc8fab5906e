"""How long KernelMachine takes to find and to shrink a failing run, and how short the
run ends up.

    python benchmarks/machine_shrink.py [--steps N] [--seeds N]

Two machines with a wrong belief built in: ``trivial`` (no process ever has two
mappings) and ``shared`` (a byte written into shared memory is never seen by a second
process: broken by mmap of shared memory, a write and a fork).  Each runs with
``MACHINE_SETTINGS`` and a fixed seed (``derandomize``); the script prints the time to the
first failure, the time and number of runs spent shrinking, and the steps left (with
``--seeds N``, for N fixed seeds each, and the medians).  Times are
wall-clock and CPU (``time.process_time``, this process only): on a shared machine the wall
time grows with the load, which is printed too, while the CPU time stays.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from qnxsim.constants import PROT_READ
from qnxsim.strategies import MACHINE_SETTINGS, KernelMachine


class _Timed(KernelMachine):
    runs = 0
    #: (wall clock, CPU time, runs so far) at the first failure.
    first_failure: tuple[float, float, int] | None = None

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
                now = (time.perf_counter(), time.process_time(), type(self).runs)
                type(self).first_failure = now
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
    machine.runs, machine.first_failure = 0, None
    start, start_cpu = time.perf_counter(), time.process_time()
    notes: list[str] = []
    try:
        run_state_machine_as_test(machine, settings=chosen)
    except AssertionError as err:
        notes = list(getattr(err, "__notes__", []))
    end, end_cpu = time.perf_counter(), time.process_time()
    assert machine.first_failure is not None, "the belief was never broken"
    found, found_cpu, runs = machine.first_failure
    log = [n for n in notes if n.startswith(("state.", "procs_"))]
    steps_left = [n for n in log if n != "state.teardown()"]
    return {
        "find_s": found - start,
        "find_cpu_s": found_cpu - start_cpu,
        "find_runs": runs,
        "shrink_s": end - found,
        "shrink_cpu_s": end_cpu - found_cpu,
        "shrink_runs": machine.runs - runs,
        "steps": len(steps_left),
        "log": "\n".join(log),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or "unknown" where the OS keeps none."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def variants(machine: type[_Timed], seeds: int) -> list[type[_Timed]]:
    """``machine`` and ``seeds - 1`` renamed copies: ``derandomize`` seeds each run from
    the test's identity, so each copy walks another fixed path."""
    copies = [type(f"{machine.__name__}_{i}", (machine,), {}) for i in range(1, seeds)]
    return [machine, *copies]


def report(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name}: found in {r['find_s']:.1f} s, {r['find_cpu_s']:.1f} s CPU "
        f"({r['find_runs']} runs); shrunk in {r['shrink_s']:.1f} s, {r['shrink_cpu_s']:.1f} s "
        f"CPU ({r['shrink_runs']} runs) to {r['steps']} steps"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="stateful_step_count")
    parser.add_argument(
        "--seeds", type=int, default=1, help="fixed seeds per machine (medians are printed)"
    )
    args = parser.parse_args()
    print(f"load average before: {load_average()}  ({os.cpu_count()} CPUs)")
    for machine in (Trivial, Shared):
        results = []
        for variant in variants(machine, args.seeds):
            r = measure(variant, args.steps)
            results.append(r)
            log = f":\n{r['log']}\n" if args.seeds == 1 else ""
            print(report(variant.__name__, r) + log)
        if args.seeds > 1:
            keys = [k for k in results[0] if k != "log"]
            median = {k: statistics.median(r[k] for r in results) for k in keys}
            worst = max(r["steps"] for r in results)
            print(report(f"{machine.__name__} median", median) + f" (at most {worst})\n")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
