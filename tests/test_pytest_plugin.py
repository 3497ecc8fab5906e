"""qnxsim.pytest_plugin, run in a pytest of its own through ``pytester``: the fixtures, the
``qnxsim`` marker, and the failure report section that shows the address spaces.

The plugin comes from the ``pytest11`` entry point, as in a user's project: the test files
below have no conftest and import no plugin.
"""

from __future__ import annotations

# pytester's inline runs drop the modules they import, and hypothesis's pytest plugin
# imports hypothesis in every run: imported here, it is imported (and rewritten) once.
import hypothesis  # noqa: F401
import pytest

from qnxsim.pytest_plugin import SECTION_TITLE

pytest_plugins = ["pytester"]


def test_the_entry_point_registers_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--trace-config")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*qnxsim*qnxsim/pytest_plugin.py*"])


def test_qnx_kernel_is_a_fresh_default_kernel_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from qnxsim import Kernel
        from qnxsim.constants import MAP_ANON, MAP_PRIVATE, NOFD, PROT_READ

        def map_one(kernel):
            p = kernel.spawn(image=False)
            return p.pid, p.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON, NOFD, 0)

        def test_first(qnx_kernel):
            assert isinstance(qnx_kernel, Kernel)
            assert (qnx_kernel.arch, qnx_kernel.version, qnx_kernel.ram) == (
                "x86_64", "8.0", 1 << 30)
            assert qnx_kernel.page_size == 4096 and qnx_kernel.aslr is False
            assert map_one(qnx_kernel) == (2, 0x8000000)

        def test_second_gets_its_own(qnx_kernel):
            assert [p.pid for p in qnx_kernel.processes()] == [1]
            assert map_one(qnx_kernel) == (2, 0x8000000)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_qnx_process_is_a_spawned_root_process_in_qnx_kernel(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_root_with_an_image(qnx_kernel, qnx_process):
            assert qnx_process.kernel is qnx_kernel
            assert qnx_process.pid == 2 and qnx_process.alive
            assert (qnx_process.ruid, qnx_process.euid) == (0, 0)
            kinds = {m.kind for m in qnx_process.mappings()}
            assert kinds == {"elf", "anon", "stack-guard"}  # R-PROC-1

        @pytest.mark.qnxsim(image=False)
        def test_empty_address_space(qnx_process):
            assert qnx_process.mappings() == ()
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_the_marker_configures_the_kernel(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qnxsim(arch="aarch64", version="8.0", ram=32 << 20, aslr=True, seed=5,
                            page_size=16384)
        def test_configured(qnx_kernel):
            assert (qnx_kernel.arch, qnx_kernel.version, qnx_kernel.ram) == (
                "aarch64", "8.0", 32 << 20)
            assert (qnx_kernel.aslr, qnx_kernel.seed, qnx_kernel.page_size) == (True, 5, 16384)

        @pytest.mark.qnxsim(ram=16 << 20, trace=True)
        class TestClassLevel:
            def test_inherits(self, qnx_kernel):
                assert qnx_kernel.ram == 16 << 20 and qnx_kernel.tracing

            @pytest.mark.qnxsim(ram=8 << 20)
            def test_closest_marker_wins(self, qnx_kernel):
                assert qnx_kernel.ram == 8 << 20 and qnx_kernel.tracing
        """
    )
    pytester.runpytest("--strict-markers").assert_outcomes(passed=3)


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.qnxsim(arch=*ram=*aslr=*seed=*"])


def test_bad_marker_arguments_are_test_errors_that_say_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qnxsim(arch="pdp11")
        def test_bad_arch(qnx_kernel):
            pass

        @pytest.mark.qnxsim(colour="blue")
        def test_unknown_keyword(qnx_kernel):
            pass

        @pytest.mark.qnxsim("aarch64")
        def test_positional(qnx_kernel):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*unknown arch 'pdp11'*",
            "*unknown keyword(s) colour*",
            "*takes keywords only*",
        ],
        consecutive=False,
    )


FAILING = """
    import pytest
    from qnxsim.constants import MAP_ANON, MAP_PRIVATE, MAP_SHARED, NOFD, PROT_READ, PROT_WRITE

    @pytest.mark.qnxsim(image=False)
    def test_server_fails(qnx_kernel, qnx_process):
        client = qnx_kernel.spawn(uid=1000, image=False)
        qnx_process.mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0)
        qnx_process.mmap_peer(client.pid, 0, 4096, PROT_READ, MAP_SHARED | MAP_ANON, NOFD, 0)
        assert False, "the port got it wrong"

    def test_fails_without_the_fixtures():
        assert False

    def test_passes(qnx_kernel):
        qnx_kernel.spawn()
"""


def test_a_failing_test_reports_every_address_space(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest()
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_server_fails _*",
            "*the port got it wrong*",
            f"*- {SECTION_TITLE} -*",
            "*pid tid name*prio STATE*code*data*stack*",
            "*1*procnto*",
            "*2*proc/boot/app*",
            "*(anon)*@8000000*8192*",
            "*3*proc/boot/app*",
            "*(shared-anon)*@1000000000*4096*",
            "RAM: total 0x40000000, free *, allocated 0x3000, reserved 0x0",
            "*_ test_fails_without_the_fixtures _*",
        ]
    )
    # The section belongs to the test that used the fixtures, and only to it.
    assert result.stdout.str().count(SECTION_TITLE) == 1


def test_the_section_is_in_the_report_object(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    reports = pytester.inline_run().getreports("pytest_runtest_logreport")
    titled = {
        (r.nodeid.split("::")[-1], r.when): [t for t, _ in r.sections if t == SECTION_TITLE]
        for r in reports
    }
    assert titled[("test_server_fails", "call")] == [SECTION_TITLE]
    assert titled[("test_fails_without_the_fixtures", "call")] == []
    assert titled[("test_passes", "call")] == []
    assert titled[("test_server_fails", "setup")] == []
    server = next(r for r in reports if r.nodeid.endswith("test_server_fails") and r.failed)
    text = dict(server.sections)[SECTION_TITLE]
    assert "@8000000" in text and "@1000000000" in text


def test_the_report_shows_the_last_calls_when_tracing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from qnxsim import QnxError
        from qnxsim.constants import MAP_PRIVATE, NOFD, PROT_READ

        @pytest.mark.qnxsim(trace=True, image=False)
        def test_traced(qnx_process):
            with pytest.raises(QnxError):
                qnx_process.mmap(0, 0, PROT_READ, MAP_PRIVATE, NOFD, 0)
            assert False
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["last * calls:", "*pid 2 mmap(0, 0, PROT_READ, MAP_PRIVATE, NOFD, 0) -> EINVAL: R-MMAP-2*"]
    )


def test_setup_failures_of_a_fixture_user_get_the_section_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def broken(qnx_process):
            raise RuntimeError("server did not start")

        def test_needs_a_server(broken):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*server did not start*", f"*- {SECTION_TITLE} -*"])


def test_qnx_kernel_checks_invariants_at_teardown(pytester: pytest.Pytester) -> None:
    """The fixture runs ``Kernel.check_invariants()`` when the test ends: a broken
    invariant is a teardown error; the marker's ``check_invariants=False`` skips it."""
    pytester.makepyfile(
        """
        import pytest
        from qnxsim import Kernel

        checked = []

        @pytest.fixture(autouse=True)
        def broken(monkeypatch):
            def check(self):
                checked.append(self)
                raise AssertionError("an invariant is broken")
            monkeypatch.setattr(Kernel, "check_invariants", check)

        def test_checked(qnx_kernel):
            assert checked == []

        @pytest.mark.qnxsim(check_invariants=False)
        def test_not_checked(qnx_kernel):
            pass

        def test_without_the_fixture():
            pass

        def test_zz_only_the_first_was_checked():
            assert len(checked) == 1
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_checked*", "*invariant is broken*"])


# -- a whole suite on another profile -------------------------------------------------------

SUITE = """
    from qnxsim import testing

    def test_fixture(qnx_kernel):
        print("KERNEL", qnx_kernel.version, qnx_kernel.arch)

    def test_factory():
        with testing.kernel(ram=1 << 20) as k:
            print("FACTORY", k.version, k.arch)
    """


def test_option_runs_the_suite_on_another_version_and_arch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("-s", "--qnx-version", "7.1", "--qnx-arch", "aarch64")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["qnxsim: qnx_kernel defaults arch='aarch64', version='7.1'", "*KERNEL 7.1 aarch64*",
         "*FACTORY 7.1 aarch64*"]
    )  # fmt: skip


def test_ini_keys_set_the_defaults_and_a_marker_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nqnx_version = 6.4\n")
    pytester.makepyfile(
        """
        import pytest

        def test_default(qnx_kernel):
            assert (qnx_kernel.version, qnx_kernel.arch) == ("6.4", "x86")

        @pytest.mark.qnxsim(version="8.0")
        def test_marker(qnx_kernel):
            assert qnx_kernel.version == "8.0"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_a_bad_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(qnx_kernel):\n    pass\n")
    result = pytester.runpytest("--qnx-version", "9.9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown QNX version '9.9'*"])


# -- hypothesis tests and the helpers' tracebacks ---------------------------------------------


def test_testing_kernel_serves_given_tests_and_notes_failures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from hypothesis import given, settings, strategies as st
        from qnxsim.constants import MAP_ANON, MAP_PRIVATE, NOFD, PROT_READ
        from qnxsim.testing import kernel

        @settings(max_examples=5, database=None)
        @given(pages=st.integers(1, 4))
        def test_each_example_has_its_kernel(pages):
            with kernel(ram=1 << 24) as k:
                p = k.spawn(image=False)
                assert p.mmap(0, pages * 4096, PROT_READ, MAP_PRIVATE | MAP_ANON, NOFD, 0)
                assert [q.pid for q in k.processes()] == [1, 2]

        @settings(max_examples=2, database=None)
        @given(pages=st.integers(1, 4))
        def test_failure_shows_the_address_spaces(pages):
            with kernel(ram=1 << 24, trace=True) as k:
                p = k.spawn(image=False)
                p.mmap(0, pages * 4096, PROT_READ, MAP_PRIVATE | MAP_ANON, NOFD, 0)
                assert pages > 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*pid tid name*", "*mmap(0, 4096, PROT_READ, MAP_PRIVATE|MAP_ANON, NOFD, 0) -> 0x8000000"]
    )
    assert "FailedHealthCheck" not in result.stdout.str()


def test_helpers_hide_their_frames(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from qnxsim.testing import assert_errno, assert_mapped

        def test_mapped(qnx_process):
            assert_mapped(qnx_process, 0x1000, 4096)

        def test_errno(qnx_process):
            assert_errno("EINVAL", qnx_process.munmap, 0x8000000, 4096)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "qnxsim/testing.py" not in out and "def assert_mapped" not in out


def test_marker_errors_do_not_chain(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.qnxsim(ram="64M")
        def test_x(qnx_kernel):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.qnxsim(ram='64M'): TypeError: ram must be an int*"])
    assert "During handling of the above exception" not in result.stdout.str()
