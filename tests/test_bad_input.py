"""Bad input that users meet first: each error says what was wrong, with the right type.

DESIGN, "Bad input": TypeError for a wrong Python type, ValueError for a bad value of a
Python-level parameter, QnxError (rule and errno) for what the C API rejects, and a reason
that says what a value was and what it became.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.__main__ import main
from qnxsim.script import MAX_BITS, Scenario, ScriptError

RW = C.PROT_READ | C.PROT_WRITE
ANON = C.MAP_PRIVATE | C.MAP_ANON


# -- Kernel configuration and the pid table ------------------------------------------------


def test_R_SYS_1_unknown_version_names_the_version_not_the_arch() -> None:
    with pytest.raises(ValueError, match=r"unknown QNX version '9\.9'.*'8\.0'"):
        Kernel(version="9.9")


@pytest.mark.parametrize(
    ("config", "word"),
    [
        ({"ram": "64M"}, "ram"),
        ({"ram": 1.5e9}, "ram"),
        ({"version": 8.0}, "version"),
        ({"arch": 64}, "arch"),
        ({"page_size": "4k"}, "page_size"),
        ({"seed": "x"}, "seed"),
        ({"aslr": 1}, "aslr"),
        ({"trace": "yes"}, "trace"),
    ],
)
def test_R_SYS_1_wrong_type_is_type_error(config: dict[str, object], word: str) -> None:
    with pytest.raises(TypeError, match=rf"^{word} must be"):
        Kernel(**config)  # type: ignore[arg-type]


def test_R_SYS_1_bad_ram_value_says_the_value() -> None:
    with pytest.raises(ValueError, match="ram 0x1001 must be a positive multiple"):
        Kernel(ram=0x1001)


def test_process_lookup_by_str_is_type_error(k: Kernel, p: Process) -> None:
    with pytest.raises(TypeError, match="pid must be an int, not str"):
        k.process(str(p.pid))  # type: ignore[arg-type]
    with pytest.raises(LookupError, match="no process with pid 999"):
        k.process(999)


# -- strategies: profiles and the optional import ------------------------------------------


def test_strategies_unknown_profile_is_value_error_naming_the_known() -> None:
    strategies = pytest.importorskip("qnxsim.strategies")
    with pytest.raises(ValueError, match=r"'9\.9'.*\['6\.4', '7\.1', '8\.0'\]"):
        strategies.map_flags(profile="9.9")


def test_strategies_without_hypothesis_says_which_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["hypothesis"] = None  # as if hypothesis were not installed
        try:
            import qnxsim.strategies
        except ModuleNotFoundError as e:
            print(e)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'qnxsim[test]'" in done.stdout, done.stderr


# -- Python-level sizes -------------------------------------------------------------------


def test_read_memory_negative_size_is_value_error(p: Process) -> None:
    a = p.mmap(0, 8192, RW, ANON, C.NOFD, 0)
    with pytest.raises(ValueError, match="size -5 is not a byte count"):
        p.read_memory(a, -5)
    with pytest.raises(ValueError):
        p.check_access(a, -1, "r")
    with pytest.raises(ValueError):
        p.read_memory(a, 2**64)


def test_R_FS_2_read_negative_n_is_value_error(k: Kernel, p: Process) -> None:
    fd = p.open("/dev/zero", C.O_RDONLY)
    with pytest.raises(ValueError, match="n -1"):
        p.read(fd, -1)
    with pytest.raises(ValueError, match="n -1"):
        p.pread(fd, -1, 0)


def test_R_FS_2_read_returns_at_most_what_ram_can_hold() -> None:
    k = Kernel(ram=4 << 20)
    p = k.spawn(image=False)
    k.create_file("/sparse")
    fd = p.open("/sparse", C.O_RDWR)
    p.ftruncate(fd, 2**40)
    assert len(p.read(fd, 2**40)) == 4 << 20  # a short read, bounded by RAM
    assert len(p.pread(fd, 2**40, 2**40 - 10)) == 10  # what exists
    zero = p.open("/dev/zero", C.O_RDONLY)
    assert len(p.read(zero, 2**62)) == 4 << 20


# -- C conversions say what a value became (R-CALL-2) ------------------------------------


def test_R_CALL_2_truncated_len_says_what_it_became(p: Process) -> None:
    with pytest.raises(QnxError) as info:
        p.mmap(0, 2**70, RW, ANON, C.NOFD, 0)
    assert info.value.errno == E.EINVAL and "R-MMAP-2" in info.value.reason
    assert "len 2**70 is 0 as a 64-bit size_t" in info.value.reason


def test_R_CALL_2_negative_size_says_the_unsigned_value(p: Process) -> None:
    a = p.mmap(0, 4096, RW, ANON, C.NOFD, 0)
    with pytest.raises(QnxError) as info:
        p.mprotect(a, -4096, C.PROT_READ)
    assert "len -4096 is 0xfffffffffffff000 as a 64-bit size_t" in info.value.reason


def test_R_CALL_2_truncated_pid_is_noted_in_a_failure(k: Kernel, p: Process) -> None:
    with pytest.raises(QnxError) as info:
        p.mmap_peer(2**80 + 99999, 0, 4096, RW, ANON, C.NOFD, 0)
    assert info.value.errno == E.ESRCH
    assert "pid 2**80+" not in info.value.reason  # shown as hex, whole
    assert "is 99999 as a 32-bit pid_t" in info.value.reason


def test_R_CALL_2_unchanged_values_add_no_note(p: Process) -> None:
    with pytest.raises(QnxError) as info:
        p.mmap(0, 0, RW, ANON, C.NOFD, 0)
    assert info.value.reason == "R-MMAP-2: len is 0"


def test_R_CALL_2_notes_do_not_leak_into_the_next_call(p: Process) -> None:
    p.mapping_at(-1)  # a conversion that changed a value, outside any call
    with pytest.raises(QnxError) as info:
        p.mmap(0, 0, RW, ANON, C.NOFD, 0)
    assert info.value.reason == "R-MMAP-2: len is 0"


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.mmap(0, True, RW, ANON, C.NOFD, 0),
        lambda p: p.mmap(0, 4096, RW, ANON, C.NOFD, False),
        lambda p: p.munmap(False, 4096),
        lambda p: p.mprotect(0x1000, 4096, True),
        lambda p: p.close(True),
        lambda p: p.libc.mmap(0, True, RW, ANON, C.NOFD, 0),
    ],
)
def test_R_CALL_2_bool_is_type_error(p: Process, call: object) -> None:
    with pytest.raises(TypeError, match="not bool"):
        call(p)  # type: ignore[operator]


# -- prot and flags in Linux numbers -----------------------------------------------------


def test_R_MPROT_1_linux_prot_read_is_named(p: Process) -> None:
    a = p.mmap(0, 4096, RW, ANON, C.NOFD, 0)
    with pytest.raises(QnxError) as info:
        p.mprotect(a, 4096, 1)
    assert info.value.reason == (
        "R-MPROT-1: prot 0x1 has bits 0x1 outside PROT_MASK (0xf00); 0x1 looks like "
        "Linux's PROT_READ (1): QNX's PROT_READ is 0x100"
    )


def test_R_MMAP_3_linux_read_write_is_named(p: Process) -> None:
    with pytest.raises(QnxError) as info:
        p.mmap(0, 4096, 3, ANON, C.NOFD, 0)
    assert "Linux's PROT_READ|PROT_WRITE (3)" in info.value.reason
    assert "PROT_WRITE is 0x200" in info.value.reason


def test_R_MMAP_3_other_bits_get_no_linux_hint(p: Process) -> None:
    with pytest.raises(QnxError) as info:
        p.mmap(0, 4096, C.PROT_READ | 0x10, ANON, C.NOFD, 0)
    assert info.value.reason == "R-MMAP-3: prot 0x110 has bits 0x10 outside PROT_MASK (0xf00)"


def test_R_MMAP_4_linux_map_flags_are_named(p: Process) -> None:
    with pytest.raises(QnxError) as info:
        p.mmap(0, 4096, RW, ANON | 0x100, C.NOFD, 0)  # Linux MAP_GROWSDOWN
    assert "Linux's MAP_GROWSDOWN" in info.value.reason
    with pytest.raises(QnxError) as info:
        p.mmap(0, 4096, RW, ANON | 0x100000, C.NOFD, 0)  # Linux MAP_FIXED_NOREPLACE
    assert "Linux's MAP_FIXED_NOREPLACE" in info.value.reason


# -- the scenario language ---------------------------------------------------------------


def scenario() -> tuple[Scenario, io.StringIO]:
    out = io.StringIO()
    return Scenario(Kernel(ram=64 << 20, trace=True), out, out), out


def test_scenario_run_takes_a_whole_script_as_str() -> None:
    s, out = scenario()
    assert s.run("spawn a\na mmap 0 4096 PROT_READ MAP_PRIVATE|MAP_ANON NOFD 0\n") == 0
    assert "a: mmap(" in out.getvalue()
    with pytest.raises(TypeError):
        s.run(b"spawn b\n")  # type: ignore[arg-type]


def test_scenario_spawn_twice_names_the_first_line() -> None:
    s, out = scenario()
    assert s.run("spawn a\n# again\nspawn a\n") == 1
    assert "line 3: a is already bound on line 1" in out.getvalue()
    assert s.run("x = 1\nfork a as x\n") == 1


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("1<<1099511627776", "a shift by"),
        ("-" * 100_000 + "1", "at most"),
        ("+".join(["1"] * 1500), "at most"),
        ("~" * 60 + "1", "nested more than"),
        ("0x" + "f" * 2000, "at most"),
        ("(1<<4000)*(1<<4000)", f"at most {MAX_BITS}"),
        ("True", "C has no bool"),
    ],
)
def test_scenario_caps_numbers_and_nesting(word: str, message: str) -> None:
    s, _ = scenario()
    with pytest.raises(ScriptError, match=message) as info:
        s.execute(f"print {word}", 7)
    assert info.value.lineno == 7


def test_cli_run_reports_non_utf8_by_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"spawn a\nprint \xff\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["run", "-"]) == 1
    err = capsys.readouterr().err
    assert "<stdin>, line 2: byte ff at column 7 is not UTF-8" in err


def test_cli_shell_from_a_pipe_has_no_prompt_and_fails(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qnxsim", "shell"],
        input=b"spawn a\nnosuch thing\nspawn b\n",
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert b"qnxsim>" not in done.stdout and b"Type help" not in done.stdout
    assert b"spawn b: pid" in done.stdout  # it goes on after the error, as sqlite3 does
    assert b"line 2: unknown command or process 'nosuch'" in done.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "qnxsim", "shell"], input=b"spawn a\n", capture_output=True,
        timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_R_CALL_2_conversion_notes_survive_snapshot_copy_and_pickle(k: Kernel) -> None:
    import copy
    import pickle

    assert copy.deepcopy(k.ctypes) is k.ctypes
    assert pickle.loads(pickle.dumps(k.ctypes)) == k.ctypes
    k.restore(k.snapshot())


def test_R_CALL_2_a_call_that_succeeds_after_a_lossy_conversion_says_so_in_its_trace() -> None:
    """C truncation stays faithful (the call succeeds in the caller, pid 2**80 being 0), and
    the trace says what the value became; a call whose values fit has no such note."""
    from qnxsim.trace import explain

    k = Kernel(trace=True)
    p = k.spawn(image=False)
    flags = C.MAP_PRIVATE | C.MAP_ANON
    p.mmap_peer(2**80, 0, 4096, C.PROT_READ, flags, C.NOFD, 0)
    event = k.trace[-1]
    assert event.args[0] == 0 and event.errno == 0
    assert "pid 2**80 is 0 as a 32-bit pid_t" in event.reason
    assert "(pid 2**80 is 0 as a 32-bit pid_t" in explain(event)
    p.mmap(0, 4096, C.PROT_READ, flags, C.NOFD, 0)
    assert k.trace[-1].reason == ""
    outcome = explain(k.trace[-1]).split(" and it returned ")[1].split(". ")[0]
    assert outcome.startswith("0x") and "(" not in outcome
