"""qnxsim: a pure-Python simulator of the QNX Neutrino memory manager.

``Kernel`` is one simulated machine; its ``Process`` objects make the simulated C calls
(``mmap``, ``mmap_peer``, ``munmap``, ``mprotect`` ...) with QNX's rules and errno.
"""

from qnxsim.access import MemoryFault
from qnxsim.addrspace import Mapping
from qnxsim.errno import QnxError
from qnxsim.kernel import Kernel
from qnxsim.physmem import MemInfo
from qnxsim.process import Process
from qnxsim.trace import TraceEvent

__all__ = ["Kernel", "Mapping", "MemInfo", "MemoryFault", "Process", "QnxError", "TraceEvent"]
__version__ = "0.1.0"
