"""pytest fixtures for tests written against qnxsim, and failure reports of address spaces.

Installed with qnxsim through the ``pytest11`` entry point, so no conftest is needed:
``qnx_kernel`` (a fresh Kernel per test, whose invariants are checked when the test ends),
``qnx_process`` (a root process spawned in it), the ``@pytest.mark.qnxsim(...)`` marker
that configures them, and, when a test that used them fails, a report section showing
every process's address space (``pidin mem``).  ``kernel_for`` builds such a kernel with
other defaults, for a project's own fixture.

``--qnx-version 7.1`` and ``--qnx-arch aarch64`` (or the ini keys ``qnx_version`` and
``qnx_arch``) run a whole suite against another profile: they are the defaults of
``qnx_kernel``, of ``kernel_for`` and of ``qnxsim.testing.kernel()``; a marker's keywords
still win.
Only pytest imports this module; ``import qnxsim`` does not.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from qnxsim import testing
from qnxsim.kernel import Kernel
from qnxsim.process import Process

#: ``@pytest.mark.qnxsim`` keywords passed to ``Kernel(...)``.
KERNEL_OPTIONS = ("arch", "version", "ram", "page_size", "aslr", "seed", "trace")
#: ``@pytest.mark.qnxsim`` keywords used by ``qnx_process``.
PROCESS_OPTIONS = ("image",)
#: ``@pytest.mark.qnxsim`` keywords of the fixture itself: ``check_invariants=False``
#: skips ``Kernel.check_invariants()`` at teardown (for a test that breaks them on purpose).
FIXTURE_OPTIONS = ("check_invariants",)
#: The title of the failure report section.
SECTION_TITLE = "qnxsim address spaces (pidin mem)"
#: How many trace events the failure report shows for a kernel made with ``trace=True``.
TRACE_TAIL = 20

MARKER_HELP = (
    "qnxsim(arch='x86_64', version='8.0', ram=1 << 30, page_size=4096, aslr=False, seed=0, "
    "trace=False, image=True, check_invariants=True): configure the qnx_kernel fixture "
    "(Kernel options; check_invariants=False skips the invariant check at teardown) and "
    "qnx_process (image=False spawns it with an empty address space)"
)

KERNEL_KEY = pytest.StashKey[Kernel]()


C_MARKER_HELP = (
    "qnxsim_c(sources=[...], cdef='...', header=None, cflags=[]): what the qnx_c fixture "
    "loads when called without arguments (qnxsim.c.load)"
)
#: ``@pytest.mark.qnxsim_c`` keywords: the defaults of ``qnx_c(...)``.
C_OPTIONS = ("sources", "cdef", "header", "cflags")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("qnxsim", "qnxsim: the simulated QNX machine of qnx_kernel")
    for name, example in (("version", "7.1"), ("arch", "aarch64")):
        help_text = (
            f"run the suite against QNX {name} {example!r} (or another): the default of "
            f"qnx_kernel and qnxsim.testing.kernel(); @pytest.mark.qnxsim({name}=...) wins"
        )
        group.addoption(f"--qnx-{name}", dest=f"qnx_{name}", default=None, help=help_text)
        parser.addini(f"qnx_{name}", help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.addinivalue_line("markers", C_MARKER_HELP)
    defaults: dict[str, Any] = {}
    for name in ("version", "arch"):
        value = config.getoption(f"qnx_{name}", None) or config.getini(f"qnx_{name}")
        if value:
            defaults[name] = value
    if defaults:
        try:
            Kernel(**defaults, ram=1 << 20)  # the configuration must make a kernel
        except (TypeError, ValueError) as err:
            raise pytest.UsageError(f"--qnx-version/--qnx-arch: {err}") from None
    testing.DEFAULTS.clear()
    testing.DEFAULTS.update(defaults)


def pytest_unconfigure(config: pytest.Config) -> None:
    testing.DEFAULTS.clear()


def pytest_report_header(config: pytest.Config) -> str | None:
    if not testing.DEFAULTS:
        return None
    shown = ", ".join(f"{k}={v!r}" for k, v in sorted(testing.DEFAULTS.items()))
    return f"qnxsim: qnx_kernel defaults {shown}"


def marker_options(node: pytest.Item) -> dict[str, Any]:
    """The ``qnxsim`` marker keywords of a test, the closest marker winning per keyword."""
    __tracebackhide__ = True
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers("qnxsim"))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.qnxsim takes keywords only ({', '.join(KERNEL_OPTIONS)}, "
                f"image), not {marker.args!r}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    known = KERNEL_OPTIONS + PROCESS_OPTIONS + FIXTURE_OPTIONS
    unknown = sorted(set(options) - set(known))
    if unknown:
        pytest.fail(
            f"@pytest.mark.qnxsim: unknown keyword(s) {', '.join(unknown)}; known: "
            f"{', '.join(known)}",
            pytrace=False,
        )
    return options


def kernel_for(request: pytest.FixtureRequest, **defaults: Any) -> Generator[Kernel, None, None]:
    """The body of a kernel fixture: a Kernel made from ``defaults`` overridden by the
    test's ``@pytest.mark.qnxsim`` keywords, shown in the failure report, and checked
    with ``Kernel.check_invariants()`` when the test ends (unless the marker says
    ``check_invariants=False``).  A project fixture with other defaults::

        @pytest.fixture
        def small_kernel(request):
            yield from kernel_for(request, ram=64 << 20)
    """
    options = marker_options(request.node)
    kwargs = {**defaults, **{k: v for k, v in options.items() if k in KERNEL_OPTIONS}}
    problem = ""
    try:
        kernel = testing.make_kernel(**kwargs)
    except (TypeError, ValueError) as err:
        problem = f"@pytest.mark.qnxsim({_keywords(kwargs)}): {type(err).__name__}: {err}"
    if problem:  # outside the except block: the failure is not "during handling" of err
        pytest.fail(problem, pytrace=False)
    request.node.stash[KERNEL_KEY] = kernel
    yield kernel
    if options.get("check_invariants", True):
        kernel.check_invariants()


@pytest.fixture
def qnx_kernel(request: pytest.FixtureRequest) -> Generator[Kernel, None, None]:
    """A fresh simulated QNX machine for this test, configured by ``@pytest.mark.qnxsim``
    (defaults: x86_64, QNX 8.0, 1 GiB of RAM, 4 KiB pages, no ASLR); its invariants are
    checked when the test ends."""
    yield from kernel_for(request)


def _keywords(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


@pytest.fixture
def qnx_process(qnx_kernel: Kernel, request: pytest.FixtureRequest) -> Process:
    """A root process spawned in ``qnx_kernel``: program image, libc and a main stack
    (R-PROC-1), or an empty address space with ``@pytest.mark.qnxsim(image=False)``."""
    image = marker_options(request.node).get("image", True)
    return qnx_kernel.spawn(uid=0, image=bool(image))


class CLoader:
    """``qnx_c(sources, cdef=...)``: ``qnxsim.c.load`` for the QNX version of a kernel,
    each distinct build loaded once; ``close()`` ends every call host it started."""

    def __init__(self, version: str | None, defaults: dict[str, Any]) -> None:
        self.version = version
        self.defaults = defaults
        self.libraries: dict[tuple[Any, ...], Any] = {}

    def __call__(self, sources: Any = None, *, version: str | None = None, **kwargs: Any) -> Any:
        from qnxsim.c.load import load

        opts = {**self.defaults, **kwargs}
        if sources is None:
            sources = opts.pop("sources", None)
        else:
            opts.pop("sources", None)
        if sources is None:
            raise TypeError("qnx_c() needs sources (or @pytest.mark.qnxsim_c(sources=[...]))")
        unknown = sorted(set(opts) - set(C_OPTIONS))
        if unknown:
            raise TypeError(f"qnx_c(): unknown keyword(s) {', '.join(unknown)}")
        ver = version or self.version or "8.0"
        key = (tuple(map(str, sources)), ver, *(repr(opts.get(k)) for k in C_OPTIONS[1:]))
        lib = self.libraries.get(key)
        if lib is None:
            lib = self.libraries[key] = load(
                list(sources),
                cdef=opts.get("cdef"),
                header=opts.get("header"),
                cflags=tuple(opts.get("cflags") or ()),
                version=ver,
            )
        return lib

    def close(self) -> None:
        """End the call hosts of every library loaded, and the host processes their C code
        forked; each library is closed even when another fails (the first error is then
        raised)."""
        from qnxsim.c.load import close_each

        close_each(lib.close for lib in self.libraries.values())


def _c_defaults(node: pytest.Item) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers("qnxsim_c"))):
        options.update(marker.kwargs)
    return options


@pytest.fixture
def qnx_c(qnx_kernel: Kernel, request: pytest.FixtureRequest) -> Generator[CLoader, None, None]:
    """Load C sources for calls inside processes of ``qnx_kernel``:
    ``lib = qnx_c(["server.c"], cdef="int f(int);")`` then ``lib.f.as_process(proc, 1)``
    (``qnxsim.c.load`` for the kernel's QNX version; builds cached on disk by content).
    Defaults from ``@pytest.mark.qnxsim_c(sources=..., cdef=..., cflags=...)``.  The call
    hosts end with the test."""
    loader = CLoader(qnx_kernel.version, _c_defaults(request.node))
    yield loader
    loader.close()


@pytest.fixture(scope="session")
def qnx_c_session() -> Generator[CLoader, None, None]:
    """``qnx_c`` for a whole session (no kernel of its own; pass ``version=`` when it is
    not 8.0): a ``@given`` test loads once and calls into processes of the kernels it
    makes.  Its finalizer ends every call host when the session ends (their simulated
    processes exit with status 0) and kills what their C code forked, so no host process
    outlives the session; ``lib.close()`` ends a library's hosts sooner (after each
    example, so that they do not add up)."""
    loader = CLoader(None, {})
    yield loader
    loader.close()


def describe(kernel: Kernel) -> str:
    """The failure report: ``pidin mem``, RAM use and, with tracing, the last calls
    (written as ``explain()`` writes them: symbolic flags, addresses in hex)."""
    return testing.kernel_report(kernel, TRACE_TAIL)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Hook wrapper: a failed phase of a test that used ``qnx_kernel`` gets a report
    section with every process's address space."""
    report = yield
    kernel = item.stash.get(KERNEL_KEY, None)
    if kernel is not None:
        if report.failed:
            report.sections.append((SECTION_TITLE, describe(kernel)))
        if call.when == "teardown":
            del item.stash[KERNEL_KEY]  # do not keep every test's kernel for the session
    return report
