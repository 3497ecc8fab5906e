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
