"""``qnxsim cc``, ``qnxsim exec`` and ``qnxsim serve``: C programs from the command line.

``qnxsim cc [cc options] FILES -o PROG`` runs the host cc with the QNX headers and the
client library (``--qnx-version V``, ``--arch A`` choose the headers);
``qnxsim exec [--uid U] [--gid G] [--qnx-version V] [--arch A] [--ram SIZE] [--trace]
[--pidin] PROG [ARGS]`` runs PROG in a fresh kernel and exits as a shell reports it (128 +
signal when killed; ``--arch`` another arch's program through the emulator that
``QNXSIM_C_EMULATOR_<ARCH>`` names); ``qnxsim serve`` keeps a kernel serving for programs
started by hand.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

COMMANDS = ("cc", "exec", "serve")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``"512M"`` -> bytes (K, M, G; optional ``iB``/``B``).  ValueError otherwise."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    try:
        return int(t[: len(t) - len(unit)], 0) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"not a size: {text!r} (write e.g. 1G, 512M, 4096)") from None


def main(argv: Sequence[str]) -> int:
    """Dispatch ``argv`` (its first word is one of COMMANDS); returns the exit status."""
    from qnxsim.c.build import unsupported_reason

    command, rest = argv[0], list(argv[1:])
    if command == "cc" and rest and rest[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    reason = unsupported_reason()
    if reason is not None:
        print(f"qnxsim {command}: this host is not supported: {reason}", file=sys.stderr)
        return 2
    if command == "cc":
        return cc(rest)
    if command == "exec":
        return exec_(rest)
    return serve(rest)


def _take(args: list[str], flag: str) -> str | None:
    """Remove ``flag VALUE`` or ``flag=VALUE`` from ``args``; the value, or None."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            value = args[i + 1]
            del args[i : i + 2]
            return value
        if a.startswith(flag + "="):
            del args[i]
            return a.split("=", 1)[1]
    return None


def cc(args: list[str]) -> int:
    from qnxsim.c.build import BuildError, compile_command, include_dir

    version = _take(args, "--qnx-version") or "8.0"
    arch = _take(args, "--arch")
    output = _take(args, "-o") or "a.out"
    try:
        if "-c" in args or "-E" in args or "-S" in args:
            from qnxsim.c.build import PROG_CFLAGS, find_cc, no_cc

            compiler = find_cc(None, arch)
            if compiler is None:  # never the host's cc for another arch's headers
                raise no_cc(arch)
            cmd = [
                compiler,
                "-I",
                str(include_dir(version, arch)),
                *args,
                *PROG_CFLAGS,
                "-o",
                output,
            ]
        else:
            cmd = compile_command([], output, args, version=version, arch=arch)
    except (BuildError, ValueError) as e:
        print(f"qnxsim cc: {e}", file=sys.stderr)
        return 2
    return subprocess.run(cmd, check=False).returncode


def _exec_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qnxsim exec",
        description="run a C program built by "
        "`qnxsim cc` as a QNX process in a fresh simulated kernel",
    )
    p.add_argument("--uid", type=int, default=0)
    p.add_argument("--gid", type=int, default=0)
    p.add_argument("--qnx-version", default="8.0")
    p.add_argument(
        "--arch",
        default=None,
        help="the kernel's arch (default: the host's; another one runs through the "
        "emulator QNXSIM_C_EMULATOR_<ARCH> names)",
    )
    p.add_argument("--ram", default="1G", help="simulated RAM (e.g. 1G, 256M)")
    p.add_argument("--trace", action="store_true", help="print every call and what it did")
    p.add_argument("--pidin", action="store_true", help="print pidin mem at the end")
    p.add_argument("prog")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return p


def exec_(argv: list[str]) -> int:
    from qnxsim.c.build import host_arch
    from qnxsim.c.run import exec_c
    from qnxsim.kernel import Kernel

    try:
        a = _exec_parser().parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    try:
        k = Kernel(
            arch=a.arch or host_arch(),
            version=a.qnx_version,
            ram=parse_size(a.ram),
            trace=a.trace,
        )
        run = exec_c(k, a.prog, a.args, uid=a.uid, gid=a.gid, capture=False)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"qnxsim exec: {e}", file=sys.stderr)
        return 2
    try:
        status = run.wait(timeout=None)
    except KeyboardInterrupt:
        run.kill()
        status = 128 + signal.SIGINT
    sys.stdout.flush()
    if a.trace:
        print("--- trace ---")
        print(k.trace.explain())
    if a.pidin:
        print("--- pidin mem ---")
        print(k.pidin("mem"))
    return status


def serve(argv: list[str]) -> int:
    from qnxsim.c.build import host_arch
    from qnxsim.c.server import Server
    from qnxsim.kernel import Kernel

    p = argparse.ArgumentParser(
        prog="qnxsim serve",
        description="serve a fresh kernel to C "
        "programs started by hand (QNXSIM_SOCK, QNXSIM_TOKEN)",
    )
    p.add_argument("--qnx-version", default="8.0")
    p.add_argument("--ram", default="1G")
    p.add_argument("--uid", type=int, default=0)
    p.add_argument("--processes", type=int, default=1, help="how many pids to hand out")
    try:
        a = p.parse_args(argv)
        k = Kernel(arch=host_arch(), version=a.qnx_version, ram=parse_size(a.ram), trace=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    except ValueError as e:
        print(f"qnxsim serve: {e}", file=sys.stderr)
        return 2
    server = Server(k).start()
    print(f"export QNXSIM_SOCK={server.path}")
    for _ in range(a.processes):
        proc = k.spawn(uid=a.uid, gid=a.uid)
        print(f"QNXSIM_TOKEN={server.token(proc.pid)}  # pid {proc.pid}")
    stopped: list[int] = []
    # Ctrl-C and SIGTERM stop the server, also when the shell that started it ignores
    # SIGINT (a background job of a non-interactive shell inherits SIG_IGN for it).  The
    # handler only notes the signal: setting a threading.Event from a signal handler can
    # deadlock on the lock the interrupted Event.wait holds.
    previous = {s: signal.signal(s, lambda signo, _: stopped.append(signo))
                for s in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    print("serving; Ctrl-C stops", flush=True)
    try:
        while not stopped:
            time.sleep(0.5)
    finally:
        for signo, handler in previous.items():
            signal.signal(signo, handler)
    server.close()
    print(k.trace.explain())
    os.environ.pop("QNXSIM_SOCK", None)
    return 0
