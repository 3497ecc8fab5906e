"""Run QNX C programs against the simulator (Linux x86_64 and aarch64 hosts).

``build(sources)`` compiles C code with the host's cc against generated QNX headers and the
client library; ``Kernel.exec_c(prog)`` runs it as a simulated process whose memory calls
the simulator decides and whose mapped memory is the simulator's RAM.  Modules: ``headers``
(the QNX headers), ``build`` (cc), ``server`` (the kernel server), ``run`` (processes).
"""

from __future__ import annotations

from qnxsim.c.build import BuildError, build, unsupported_reason

__all__ = ["BuildError", "build", "unsupported_reason"]
