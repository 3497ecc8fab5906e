"""The C bridge reads the call table: QNX header declarations come from it, and every row
of a QNX header is routed by the client library and the server (by hand or generated)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from c_support import needs_c

from qnxsim import calls
from qnxsim.c import generate, headers
from qnxsim.c.build import client_source
from qnxsim.c.server import CALLS as SERVED


def _defined_in_client() -> set[str]:
    src = client_source()
    return set(re.findall(r"^[a-z_][\w \*]*?\b(\w+)\([^;{]*\)\s*\{", src, re.M))


def test_qnx_headers_declare_every_row_as_the_table_prototypes_it() -> None:
    text = headers.mman_h("8.0", "x86_64") + headers.procmgr_h("8.0", "x86_64")
    for header in generate.QNX_HEADERS:
        for row in calls.headers().get(header, ()):
            assert calls.prototype(row) + ";" in text


def test_every_row_of_a_qnx_header_is_routed() -> None:
    generated = {row.name for row in generate.generated_rows()}
    client = _defined_in_client() | generated
    for header in generate.QNX_HEADERS:
        for row in calls.headers().get(header, ()):
            assert (row.c_name or row.name) in client, row.name
            assert row.name in SERVED, row.name


@pytest.mark.parametrize("version", ["8.0", "7.1", "6.4"])
def test_the_client_tables_take_wait_options_from_the_profile(version: str) -> None:
    from qnxsim import Kernel

    text = headers.tables_h(version, "x86_64")
    value = Kernel(version=version).constants.WNOHANG
    assert f"#define QX_WNOHANG {value:#x}\n" in text


@needs_c
def test_rows_being_added_get_wrappers_that_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planned rows (shm handles, mmap_device_io, ...) need no bridge change."""
    from qnxsim.c.build import client_object

    monkeypatch.setenv("QNXSIM_CACHE", str(tmp_path))
    monkeypatch.setattr(calls, "TABLE", calls.TABLE + calls.PLANNED)
    names = {row.name for row in generate.generated_rows()}
    assert {"mmap_handle", "shm_open_handle", "mmap_device_io", "shm_revoke"} <= names
    text = generate.wrappers()
    assert "qx_simfd_or_bad(fd)" in text and "qx_qnx_oflags(flags)" in text
    assert client_object().exists()  # -Wall -Wextra -Werror


#: The GNU triple of each arch whose programs the bridge runs (Linux hosts).
TRIPLES = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


@pytest.mark.parametrize("arch", sorted(TRIPLES))
def test_the_client_library_and_call_host_build_for_every_supported_host_arch(
    arch: str, tmp_path: Path
) -> None:
    """The bridge's C is built for the other supported arch too, by a cross compiler
    (.ci/run installs gcc-aarch64-linux-gnu): a system call one arch lacks (aarch64 has no
    SYS_dup2, no SYS_access) is a build error there, caught here."""
    import shutil
    import subprocess

    from qnxsim.c.build import LIB_CFLAGS, client_object, find_cc, host_arch, include_dir
    from qnxsim.c.load import _host_source

    native = arch == host_arch()
    cc = find_cc(None) if native else shutil.which(f"{TRIPLES[arch]}-gcc")
    if cc is None:
        pytest.skip(f"no C compiler for {arch} here (install gcc-{TRIPLES[arch]})")
    for version in ("8.0", "7.1", "6.4"):
        assert client_object(version, arch, cc).stat().st_size > 0
    host = subprocess.run(
        [cc, *LIB_CFLAGS, "-iquote", str(include_dir("8.0", arch)), "-c",
         str(_host_source()), "-o", str(tmp_path / "host.o")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert host.returncode == 0, host.stderr


def test_a_generated_call_that_maps_memory_checks_for_the_hosts_holes() -> None:
    """Under an emulator a new mapping of the caller must not lie over the host's memory:
    generated wrappers of such calls go through the same check as mmap."""
    text = generate.wrappers()

    def body(name: str) -> str:  # the definition follows the prototype
        start = text.index(f"{name}(", text.index(f"{name}(") + 1)
        return text[start : text.index("\n}\n", start)]

    assert body("mmap_handle").endswith("return qx_map_result(r, len);")
    assert "qx_map_result" not in body("mmap_device_io")  # I/O ports, not memory
