"""Per-call overhead of ``qnxsim.c.load``: 1,000 calls of a trivial C function inside one
simulated process (the call host persists between calls).  Prints microseconds per call.

    python benchmarks/c_call_bench.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from qnxsim import Kernel
from qnxsim.c.load import load

CALLS = 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "add.c"
        src.write_text("int add(int a, int b);\nint add(int a, int b) { return a + b; }\n")
        lib = load([src], cdef="int add(int a, int b);")
        k = Kernel()
        proc = k.spawn()
        with lib:
            lib.add.as_process(proc, 1, 2)  # start the call host
            t0 = time.perf_counter()
            for i in range(CALLS):
                assert lib.add.as_process(proc, i, 1) == i + 1
            per = (time.perf_counter() - t0) / CALLS
        print(f"{CALLS} calls: {per * 1e6:.1f} us per call (target: under 100 us)")


if __name__ == "__main__":
    main()
