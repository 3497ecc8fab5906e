"""Command line: ``qnxsim demo | run SCRIPT | pidin [mem|maps] | shell | rules [ID]``
(also ``python -m qnxsim ...``).

``demo`` walks through QNX's own mmap_peer() example and the errors a porting engineer
meets, then gives a client a buffer both ways (mmap_peer, and a shared memory handle),
printing each step with the rule that decided it.  ``run`` executes a scenario
script and ``shell`` reads the same language at a prompt (``qnxsim.script`` documents
it).  ``pidin`` prints ``pidin mem`` or every mapping record of a freshly booted machine,
or of the machine a script leaves behind.  ``rules`` prints the rule catalogue
(``qnxsim.rules``): what a rule id in an error reason decides.

Exit codes: 0 success, 1 a script failed (a call failed, an ``expect`` was not met, or a
line could not be read), 2 a usage error (bad options, a script file that cannot be read).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import io
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TextIO

from qnxsim import Kernel, QnxError
from qnxsim.arch import SUPPORTED_ARCHES
from qnxsim.constants import (
    MAP_FLAG_NAMES,
    MAP_SHARED,
    NOFD,
    O_CREAT,
    O_RDWR,
    PROT_READ,
    PROT_WRITE,
    SHM_ANON,
    flag_names,
)
from qnxsim.profile import PROFILES
from qnxsim.render import HEADER, process_lines
from qnxsim.script import Scenario, Shell


def _attempt(out: TextIO, what: str, fn: Callable[[], int]) -> None:
    try:
        result = fn()
    except QnxError as err:
        out.write(f"  {what}\n    -> fails: {err}\n")
    else:
        out.write(f"  {what}\n    -> returned {result:#x}\n")


def demo(out: TextIO) -> int:
    """QNX's mmap_peer() example, then ESRCH, EPERM and EINVAL with their rules."""
    k = Kernel()
    parent = k.spawn("/proc/boot/server", uid=0)
    child = k.process(parent.fork())
    rw = PROT_READ | PROT_WRITE
    w = out.write
    w("qnxsim demo: mmap_peer() creates a mapping in another process's address space\n\n")
    w(f"{k!r}\n")
    w(f"parent pid {parent.pid} (uid {parent.uid}); it forked child pid {child.pid}\n\n")

    w("1. The child maps one shared page into its parent:\n")
    w(f"   mmap_peer({parent.pid}, 0, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, NOFD, 0)\n")
    addr = child.mmap_peer(parent.pid, 0, 4096, rw, MAP_SHARED, NOFD, 0)
    rec = parent.mapping_at(addr)
    assert rec is not None
    w(f"   returned {addr:#x}: an address in pid {parent.pid}'s address space only\n")
    flags = flag_names(rec.flags, MAP_FLAG_NAMES)
    w(f"   in the parent: {rec.start:#x}-{rec.end:#x} {rec.kind}, flags {flags}\n")
    w(f"   in the child:  {child.mapping_at(addr)!r} (the caller's space is unchanged)\n\n")

    w("2. The parent uses the page like any mapping of its own (R-PEER-5):\n")
    parent.write_memory(addr, b"hello from the peer mapping")
    w(f"   write_memory({addr:#x}, ...); read_memory -> {parent.read_memory(addr, 27)!r}\n\n")

    w(f"3. The child removes it again: munmap_peer({parent.pid}, {addr:#x}, 4096)\n")
    child.munmap_peer(parent.pid, addr, 4096)
    w(f"   parent.mapping_at({addr:#x}) -> {parent.mapping_at(addr)!r}\n\n")

    w("4. What a porting engineer meets:\n")
    missing = 99999
    _attempt(
        out,
        f"a pid that does not exist: mmap_peer({missing}, 0, 4096, ...)",
        lambda: child.mmap_peer(missing, 0, 4096, rw, MAP_SHARED, NOFD, 0),
    )
    stranger = k.spawn("/proc/boot/client", uid=1000)
    other = k.spawn("/proc/boot/other", uid=2000)
    _attempt(
        out,
        f"non-root pid {stranger.pid} (uid 1000) into pid {other.pid} of uid 2000",
        lambda: stranger.mmap_peer(other.pid, 0, 4096, rw, MAP_SHARED, NOFD, 0),
    )
    _attempt(
        out,
        f"len == 0: mmap_peer({parent.pid}, 0, 0, ...)",
        lambda: child.mmap_peer(parent.pid, 0, 0, rw, MAP_SHARED, NOFD, 0),
    )
    libc_result = child.libc.mmap_peer(missing, 0, 4096, rw, MAP_SHARED, NOFD, 0)
    w(f"  the C way: libc.mmap_peer({missing}, ...) == {libc_result} (MAP_FAILED), "
      f"errno {child.libc.errno}\n\n")  # fmt: skip

    w("5. A server shares a named shm object with a client (the usual use of mmap_peer):\n")
    server = k.spawn("/proc/boot/server", uid=0)
    client = k.spawn("/proc/boot/client", uid=1000)
    fd = server.shm_open("/buf", O_RDWR | O_CREAT, 0o600)
    server.ftruncate(fd, 8192)
    mine = server.mmap(0, 8192, rw, MAP_SHARED, fd, 0)
    theirs = server.mmap_peer(client.pid, 0, 8192, rw, MAP_SHARED, fd, 0)
    w(f'   fd = shm_open("/buf", O_RDWR|O_CREAT, 0600) -> {fd}; ftruncate(fd, 8192)\n')
    w(f"   server maps it at {mine:#x}; mmap_peer puts it at {theirs:#x} in pid {client.pid}\n")
    server.write_memory(mine, b"request #1")
    w(f"   server writes b'request #1'; the client reads {client.read_memory(theirs, 10)!r}\n")
    server.close(fd)
    server.shm_unlink("/buf")
    w("   close(fd) and shm_unlink(\"/buf\"): the client's mapping lives on (R-OBJ-2): "
      f"{client.read_memory(theirs, 10)!r}\n")  # fmt: skip
    info = k.meminfo()
    w(f"   meminfo: {info.allocated:#x} bytes allocated, {info.reserved:#x} reserved\n\n")

    w("6. A buffer for the client through a handle (7.1+), which QNX recommends over mmap_peer:\n")
    fd = server.shm_open(SHM_ANON, O_RDWR | O_CREAT, 0o600)
    server.ftruncate(fd, 8192)
    handle = server.shm_create_handle(fd, client.pid, O_RDWR, 0)
    w(f"   server: fd = shm_open(SHM_ANON, ...) -> {fd}; ftruncate(fd, 8192); "
      f"shm_create_handle(fd, {client.pid}, O_RDWR, &h, 0) -> h = {handle}\n")  # fmt: skip
    w("   (the handle travels to the client in a message; no name, no ability needed)\n")
    buf = client.mmap_handle(0, 8192, rw, MAP_SHARED, handle, 0)
    w(f"   client: mmap_handle(0, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, h, 0) -> {buf:#x}\n")
    server.pwrite(fd, b"request #2", 0)
    w(f"   server writes b'request #2' through its fd; the client reads "
      f"{client.read_memory(buf, 10)!r}\n")  # fmt: skip
    _attempt(out, "the handle is used up: mmap_handle(..., h, 0) again",
             lambda: client.mmap_handle(0, 8192, rw, MAP_SHARED, handle, 0))  # fmt: skip
    w("   (shm_open_handle(h, O_RDWR) would have given the client an fd instead)\n\n")

    w(f"7. The parent's address space afterwards, as `pidin mem` shows it:\n{HEADER}\n")
    w("\n".join(process_lines(parent)) + "\n")
    k.check_invariants()
    return 0


EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
HISTORY_FILE = "~/.qnxsim_history"


def installed_version() -> str:
    """The version in the installed distribution's metadata, or a note that there is none."""
    try:
        return importlib.metadata.version("qnxsim")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: no package metadata)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qnxsim",
        description="A simulator of the QNX Neutrino memory manager.",
        epilog="Exit codes: 0 success, 1 script failure, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "demo",
        help="walk through mmap_peer() and its errors",
        description="QNX's mmap_peer() example, then ESRCH, EPERM and EINVAL with their rules.",
    )
    run = sub.add_parser(
        "run",
        help="run a scenario script",
        description="Run a scenario script (the language is described by `qnxsim shell` "
        "help and the README). A failing call or expect stops it with exit code 1.",
    )
    run.add_argument("script", metavar="SCRIPT", help="the script file; - reads standard input")
    run.add_argument("--trace", action="store_true", help="explain every call after it runs")
    run.add_argument("-q", "--quiet", action="store_true", help="do not echo the statements")
    _machine_options(run)
    pidin = sub.add_parser(
        "pidin",
        help="print `pidin mem` (or every mapping record) of a machine",
        description="Print QNX's `pidin mem` view, or with `maps` every mapping record, of a "
        "freshly booted machine with one process, or of the machine SCRIPT leaves behind.",
    )
    pidin.add_argument("view", nargs="?", default="mem", choices=["mem", "maps"])
    pidin.add_argument("-s", "--script", metavar="SCRIPT", help="run this script first")
    _machine_options(pidin)
    shell = sub.add_parser(
        "shell",
        help="an interactive prompt for the scenario language",
        description="Read scenario statements at a prompt, with history and completion. "
        "Type help for the language; quit or end of input leaves.",
    )
    shell.add_argument("--trace", action="store_true", help="explain every call after it runs")
    _machine_options(shell)
    rules = sub.add_parser(
        "rules",
        help="what a rule id (R-PEER-3 ...) decides",
        description="Print the rule catalogue: with no ID one line per rule; with IDs what "
        "each decides, its errno, kind and evidence, where the code decides it and which "
        "tests check it.",
    )
    rules.add_argument("ids", nargs="*", metavar="ID", help="rule ids, e.g. R-PEER-3 or peer-3")
    rules.add_argument(
        "--markdown", action="store_true", help="print docs/RULES.md (from a source checkout)"
    )
    return parser


def rules_command(ids: Sequence[str], markdown: bool, out: TextIO) -> int:
    """``qnxsim rules [ID ...] [--markdown]``."""
    from qnxsim import rules

    package, tests = rules._sources()
    if markdown:
        if tests is None:
            sys.stderr.write("qnxsim: --markdown needs the tests/ of a source checkout\n")
            return EXIT_USAGE
        out.write(rules.catalogue_markdown(package, tests))
        return EXIT_OK
    if not ids:
        out.write("\n".join(rules.listing()) + "\n")
        return EXIT_OK
    code = rules.code_citations(package)
    checks = rules.naming_tests(tests) if tests is not None else {}
    for rid in ids:
        try:
            rule = rules.lookup(rid)
        except KeyError as err:
            sys.stderr.write(f"qnxsim: {err.args[0]}\n")
            return EXIT_USAGE
        out.write(rules.describe(rule, code.get(rule.id, ()), checks.get(rule.id, ())) + "\n")
    return EXIT_OK


def _machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arch", default=None, choices=list(SUPPORTED_ARCHES), help="default: the version's"
    )
    parser.add_argument(
        "--qnx-version", default="8.0", choices=list(PROFILES), help="QNX version (default: 8.0)"
    )


def _read_script(path: str) -> list[str] | None:
    """The script's lines; bytes that are not UTF-8 stay as surrogates, so that the line
    that holds them fails with its number (``Scenario.execute``) instead of the reader."""
    try:
        if path == "-":
            raw = getattr(sys.stdin, "buffer", None)  # None: a text stream put in its place
            data = raw.read() if raw is not None else sys.stdin.read().encode("utf-8")
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as err:
        sys.stderr.write(f"qnxsim: cannot read {path}: {err}\n")
        return None
    return data.decode("utf-8", "surrogateescape").splitlines()


def _readline() -> ModuleType | None:
    """readline for history across sessions, when there is a terminal and a readline."""
    if not sys.stdin.isatty():
        return None
    try:
        return importlib.import_module("readline")
    except ImportError:  # pragma: no cover - platforms without readline
        return None


def _shell(scenario: Scenario) -> int:
    """The prompt on a terminal; from a pipe or file no prompt, errors on stderr naming
    the line, and exit code 1 when a line failed (as python and sqlite3 behave)."""
    if not sys.stdin.isatty():
        raw = getattr(sys.stdin, "buffer", None)
        stdin: TextIO = sys.stdin
        if raw is not None:
            stdin = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape")
        scenario.err = sys.stderr
        quiet = Shell(scenario, stdin, sys.stdout, interactive=False, stderr=sys.stderr)
        quiet.cmdloop()
        return EXIT_FAILURE if quiet.failures else EXIT_OK
    shell = Shell(scenario)
    history = os.path.expanduser(HISTORY_FILE)
    readline = _readline()
    if readline is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    try:
        shell.cmdloop()
    except KeyboardInterrupt:
        sys.stdout.write("\n")
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(history)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """The ``qnxsim`` command; returns the exit code (0 ok, 1 script failure, 2 usage)."""
    try:
        return _main(argv)
    except BrokenPipeError:  # ``qnxsim pidin | head``: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None) -> int:
    # -- C programs: `qnxsim cc`, `exec` and `serve` parse their own arguments (qnxsim/c/cli.py)
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] in ("cc", "exec", "serve"):
        from qnxsim.c.cli import main as c_main

        return c_main(words)
    # -- end of the C programs block
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "demo":
        return demo(sys.stdout)
    if args.command == "rules":
        return rules_command(args.ids, args.markdown, sys.stdout)
    kernel = Kernel(arch=args.arch, version=args.qnx_version, trace=True)
    if args.command == "shell":
        return _shell(Scenario(kernel, sys.stdout, sys.stdout, explain_calls=args.trace))
    if args.command == "run":
        lines = _read_script(args.script)
        if lines is None:
            return EXIT_USAGE
        scenario = Scenario(
            kernel, sys.stdout, sys.stderr, echo=not args.quiet, explain_calls=args.trace
        )
        return scenario.run(lines, "<stdin>" if args.script == "-" else args.script)
    if args.script is None:
        kernel.spawn()
    else:
        lines = _read_script(args.script)
        if lines is None:
            return EXIT_USAGE
        quiet = Scenario(kernel, io.StringIO(), sys.stderr, echo=False)
        if quiet.run(lines, args.script):
            return EXIT_FAILURE
    print(kernel.pidin(args.view))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
