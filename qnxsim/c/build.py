"""Building C programs against the simulator: QNX headers, the client library, the program.

``build(sources)`` compiles with the host's ``cc`` (position independent, so the host keeps
its own code far above the simulated user range), the generated QNX headers first on the
include path, and links the client library; results are cached by content under
``$QNXSIM_CACHE`` (default ``~/.cache/qnxsim``).

Programs of the other supported arch run through an emulator when one is named for it:
``QNXSIM_C_EMULATOR_AARCH64=/usr/bin/qemu-aarch64-static`` on an x86_64 host (and
``QNXSIM_C_EMULATOR_X86_64`` on an aarch64 one).  They are then built by that arch's cross
compiler (``aarch64-linux-gnu-gcc``) and started under the emulator with the arch's
libraries (``QEMU_LD_PREFIX``, default ``/usr/aarch64-linux-gnu``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from qnxsim.c.headers import write_headers
from qnxsim.profile import PROFILES

#: The host arches whose programs can run as simulated processes (uname -m -> arch).
HOST_ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
LIB_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIE", "-U_FORTIFY_SOURCE")
#: Added to every program: QNX headers first, no libc fortify wrappers (they would call
#: libc-internal entry points around the simulated calls), PIE, main wrapped for exit.
PROG_CFLAGS = ("-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0", "-fPIE")
PROG_LDFLAGS = ("-pie", "-Wl,--wrap=main", "-ldl")


class BuildError(RuntimeError):
    """The host compiler refused: ``.output`` holds what it said."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(f"{message}\n{output}".rstrip())
        self.output = output


def unsupported_reason() -> str | None:
    """Why C programs cannot run on this host, or None when they can."""
    if platform.system() != "Linux":
        return f"C programs run on Linux only (x86_64, aarch64); this host is {platform.system()}"
    if platform.machine() not in HOST_ARCHES:
        return f"C programs run on x86_64 and aarch64 only; this host is {platform.machine()}"
    if not hasattr(os, "memfd_create"):
        return "this Python has no os.memfd_create"
    if find_cc() is None:
        return "no C compiler (cc) on PATH"
    return None


def host_arch() -> str:
    """The simulated arch that equals this host's (``uname -m``); ValueError elsewhere."""
    arch = HOST_ARCHES.get(platform.machine())
    if arch is None:
        raise ValueError(f"C programs run on x86_64 and aarch64 hosts, not {platform.machine()}")
    return arch


#: The GNU triple of each arch whose programs run as simulated processes (Linux): the
#: cross compiler's prefix and the directory of the arch's libraries.
TRIPLES = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


def cross(arch: str | None) -> bool:
    """Is ``arch`` the other supported arch, not the host's (built by a cross compiler,
    run through an emulator)?"""
    return arch is not None and arch != host_arch() and arch in TRIPLES


def emulator_variable(arch: str) -> str:
    """The environment variable naming the emulator for ``arch``'s programs."""
    return f"QNXSIM_C_EMULATOR_{arch.upper()}"


def emulator(arch: str) -> str | None:
    """The emulator that runs ``arch``'s programs on this host (an arch other than the
    host's, named by ``QNXSIM_C_EMULATOR_<ARCH>``), or None.  ValueError when the
    variable names no executable."""
    if not cross(arch):
        return None
    var = emulator_variable(arch)
    value = os.environ.get(var, "")
    if not value:
        return None
    path = shutil.which(value)
    if path is None:
        raise ValueError(f"{var} is {value!r}, which is not an executable program")
    return path


def emulator_env(arch: str, env: Mapping[str, str]) -> dict[str, str]:
    """What a program of ``arch`` run through its emulator gets added to its environment
    ``env``: the client library learns that the host's memory shares its user range
    (QNXSIM_EMULATED) and qemu-user where the arch's libraries are (QEMU_LD_PREFIX, unless
    ``env`` sets it)."""
    return {
        "QNXSIM_EMULATED": "1",
        "QEMU_LD_PREFIX": env.get("QEMU_LD_PREFIX") or f"/usr/{TRIPLES[arch]}",
    }


def check_arch(arch: str) -> None:
    """ValueError unless a kernel of ``arch`` can run C programs here: the host's arch,
    or another one whose emulator ``QNXSIM_C_EMULATOR_<ARCH>`` names."""
    if arch == host_arch() or emulator(arch) is not None:
        return
    hint = (
        f", or name an emulator for it: {emulator_variable(arch)}=/usr/bin/qemu-{arch}-static"
        if arch in TRIPLES
        else ""
    )
    raise ValueError(
        f"the kernel's arch is {arch!r} but C programs are built for the host, "
        f"{host_arch()!r}: use Kernel(arch={host_arch()!r}){hint}"
    )


def find_cc(cc: str | None = None, arch: str | None = None) -> str | None:
    """The compiler: ``cc`` if given, else for the host's arch ``$CC`` or ``cc``, else the
    arch's cross compiler (``aarch64-linux-gnu-gcc``)."""
    if cc is None and cross(arch):
        assert arch is not None
        return shutil.which(f"{TRIPLES[arch]}-gcc")
    return shutil.which(cc or os.environ.get("CC", "cc"))


def no_cc(arch: str | None) -> BuildError:
    """The error when no compiler for ``arch`` (None: the host's) is on PATH."""
    if cross(arch):
        assert arch is not None
        return BuildError(
            f"no C compiler for {arch}: {TRIPLES[arch]}-gcc is not on PATH "
            f"(Debian: apt-get install gcc-{TRIPLES[arch]})"
        )
    return BuildError("no C compiler (cc) on PATH")


def cache_dir() -> Path:
    """``$QNXSIM_CACHE``, else ``~/.cache/qnxsim``, else a directory in the temp dir."""
    base = os.environ.get("QNXSIM_CACHE") or os.path.join(Path.home(), ".cache", "qnxsim")
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return Path(base)
    except OSError:
        pass
    path = Path(tempfile.gettempdir()) / f"qnxsim-cache-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def client_source() -> str:
    return resources.files("qnxsim.c").joinpath("src/qnxsim_client.c").read_text()


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:20]


def _publish(tmp: Path, final: Path) -> Path:
    """Move a finished build into the cache; another process may have won the race."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.exists():
            raise
    return final


def include_dir(version: str = "8.0", arch: str | None = None) -> Path:
    """The generated QNX headers for ``(version, arch)``, written once.  ValueError for an
    unknown version."""
    if version not in PROFILES:
        raise ValueError(f"unknown QNX version {version!r}; expected one of {sorted(PROFILES)}")
    arch = arch or host_arch()
    from qnxsim.c import headers

    text = "".join(make(version, arch) for make in headers.HEADERS.values())
    final = cache_dir() / f"include-{version}-{arch}-{_digest(text)}"
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(dir=cache_dir()))
        write_headers(tmp, version, arch)
        _publish(tmp, final)
    return final


def _run_cc(cmd: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed: {' '.join(cmd)}", proc.stdout + proc.stderr)


def client_object(version: str = "8.0", arch: str | None = None, cc: str | None = None) -> Path:
    """The client library compiled for ``(version, arch)`` with the host's cc, or the
    arch's cross compiler (cached)."""
    compiler = find_cc(cc, arch)
    if compiler is None:
        raise no_cc(arch)
    inc = include_dir(version, arch)
    src = client_source()
    final = cache_dir() / f"client-{_digest(src, str(inc), compiler, *LIB_CFLAGS)}.o"
    if not final.exists():
        fd, tmp = tempfile.mkstemp(suffix=".o", dir=cache_dir())
        os.close(fd)
        srcdir = Path(tempfile.mkdtemp(dir=cache_dir()))
        try:
            (srcdir / "qnxsim_client.c").write_text(src)
            _run_cc(
                [
                    compiler,
                    *LIB_CFLAGS,
                    "-iquote",
                    str(inc),
                    "-c",
                    str(srcdir / "qnxsim_client.c"),
                    "-o",
                    tmp,
                ],
                "building the client library",
            )
            _publish(Path(tmp), final)
        finally:
            shutil.rmtree(srcdir, ignore_errors=True)
            if os.path.exists(tmp):
                os.unlink(tmp)
    return final


def compile_command(
    files: Iterable[str],
    output: str,
    options: Sequence[str] = (),
    *,
    version: str = "8.0",
    arch: str | None = None,
    cc: str | None = None,
) -> list[str]:
    """The host cc command line that builds ``files`` into the program ``output`` (for the
    other supported arch: by its cross compiler; running it needs an emulator here)."""
    arch = arch or host_arch()
    if arch not in TRIPLES:
        check_arch(arch)
    compiler = find_cc(cc, arch)
    if compiler is None:
        raise no_cc(arch)
    inc = include_dir(version, arch)
    lib = client_object(version, arch, cc)
    return [
        compiler,
        "-I",
        str(inc),
        *options,
        *PROG_CFLAGS,
        *files,
        str(lib),
        *PROG_LDFLAGS,
        "-o",
        output,
    ]


def build(
    sources: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str] | None = None,
    *,
    cflags: Sequence[str] = (),
    version: str = "8.0",
    arch: str | None = None,
    cc: str | None = None,
) -> Path:
    """Compile ``sources`` into a program that runs under ``Kernel.exec_c``; returns its
    path.  Cached by content (sources, flags, version, arch, client library) unless
    ``output`` is given.  BuildError with the compiler's words when cc refuses."""
    if isinstance(sources, str | os.PathLike):
        raise TypeError("sources must be a list of paths, not one path")
    paths = [Path(s) for s in sources]
    arch = arch or host_arch()
    cmd_probe = compile_command(["X"], "Y", cflags, version=version, arch=arch, cc=cc)
    key = _digest(*(p.read_bytes() for p in paths), *cmd_probe, *(p.name for p in paths))
    if output is None:
        out = cache_dir() / f"prog-{key}"
        if out.exists():
            return out
    else:
        out = Path(output)
    fd, tmp = tempfile.mkstemp(dir=out.parent if output is not None else cache_dir())
    os.close(fd)
    try:
        cmd = compile_command(
            [str(p) for p in paths], tmp, cflags, version=version, arch=arch, cc=cc
        )
        _run_cc(cmd, "compiling " + " ".join(str(p) for p in paths))
        return _publish(Path(tmp), out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
