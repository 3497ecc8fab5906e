"""The ``qnxsim`` command (demo, run, pidin, shell) and the scenario language."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim.__main__ import main
from qnxsim.render import HEADER
from qnxsim.script import Scenario, ScriptError, ScriptFailure, Shell, tokenize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SCRIPT = """\
# the README's scenario
spawn server uid=0
spawn client uid=1000
fd = server shm_open "/buf" O_RDWR|O_CREAT 0o600
server ftruncate fd 8192
a = server mmap 0 8192 PROT_READ|PROT_WRITE MAP_SHARED fd 0
p = server mmap_peer client 0 8192 PROT_READ|PROT_WRITE MAP_SHARED fd 0
server write_memory a "hello"
client read_memory p 5
expect ESRCH server mmap_peer 99999 0 4096 PROT_READ MAP_SHARED fd 0
check
"""


def write(tmp_path: Path, text: str, name: str = "s.qsim") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- demo and pidin --------------------------------------------------------------------------


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "mmap_peer() creates a mapping in another process's address space" in out
    assert "ESRCH (3): mmap_peer: R-PEER-2" in out
    assert HEADER in out


def test_python_dash_m_qnxsim_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qnxsim", "demo"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "R-PEER-2" in done.stdout


def test_pidin_of_a_fresh_machine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "pidin")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == HEADER
    assert lines[2].split()[:3] == ["2", "1", "proc/boot/app"]
    code, out, _ = run(capsys, "pidin", "maps")
    assert code == 0 and "start-end" in out and "MAP_PRIVATE|MAP_ELF" in out


def test_pidin_after_a_script(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "pidin", "--script", write(tmp_path, SCRIPT))
    assert code == 0
    assert out.startswith(HEADER)  # the script's own output is not shown
    assert "/dev/shmem/buf" in out and "proc/boot/client" in out
    code, out, _ = run(capsys, "pidin", "maps", "-s", write(tmp_path, SCRIPT))
    assert code == 0 and "MAP_SHARED" in out


def test_pidin_after_a_failing_script(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "pidin", "--script", write(tmp_path, "spawn a\nbogus\n"))
    assert code == 1 and out == ""
    assert "line 2: unknown command or process 'bogus'" in err


@pytest.mark.parametrize("command", [[], ["demo"], ["run"], ["pidin"], ["shell"]])
def test_help_of_every_subcommand(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0
    assert out.startswith("usage: qnxsim")


@pytest.mark.parametrize(
    "argv", [[], ["bogus"], ["pidin", "threads"], ["run"], ["run", "--bogus", "x"]]
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "usage: qnxsim" in err


def test_unreadable_script_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "run", str(tmp_path / "missing.qsim"))
    assert code == 2
    assert "cannot read" in err and "missing.qsim" in err


# -- run ---------------------------------------------------------------------------------------


def test_run_echoes_each_statement(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "run", write(tmp_path, SCRIPT))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "spawn server: pid 2 (/proc/boot/server, uid 0)"
    assert lines[2] == 'fd = server: shm_open("/buf", O_RDWR|O_CREAT, 0o600) -> 0'
    assert lines[4].startswith(
        "a = server: mmap(0, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 0, 0) -> 0x"
    )
    assert lines[7] == "client: read_memory(0x1000000000, 5) -> b'hello'"
    assert lines[8].startswith("expect ESRCH: server: mmap_peer(99999, ")
    assert lines[8].endswith("-> ESRCH (3): mmap_peer: R-PEER-2: pid 99999 does not exist")
    assert lines[9] == "invariants hold"


def test_run_quiet_and_trace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "run", "-q", write(tmp_path, SCRIPT))
    assert code == 0 and out == ""
    code, out, _ = run(capsys, "run", "--trace", "-q", write(tmp_path, SCRIPT))
    assert code == 0
    assert "  # pid 2 called mmap_peer(3, 0, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 0, 0)" in out
    assert "failed with ESRCH (3, No such process): R-PEER-2" in out


def test_run_reads_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("spawn a\nbogus\n"))
    code, _, err = run(capsys, "run", "-")
    assert code == 1
    assert err.startswith("<stdin>, line 2: ")


def test_run_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "run", str(EXAMPLES / "shm_peer.qsim"))
    assert (code, err) == (0, "")
    assert "expect SIGSEGV" in out and HEADER in out


@pytest.mark.parametrize(
    ("script", "line", "message"),
    [
        ("spawn a\n\n# fine so far\nfrobnicate a\n", 4, "unknown command or process 'frobnicate'"),
        ("spawn a\na mmap 0 4096 PROT_RAED MAP_PRIVATE NOFD 0\n", 2,
         "unknown constant 'PROT_RAED'; did you mean PROT_READ?"),
        ("spawn a\na mmapp 0 4096\n", 2, "unknown call 'mmapp'; did you mean mmap?"),
        ("spawn a\nexpect EINVAL a mmap 0 4096 PROT_READ MAP_PRIVATE|MAP_ANON NOFD 0\n", 2,
         "expected EINVAL, but the statement succeeded: a: mmap(0, 4096, PROT_READ, "
         "MAP_PRIVATE|MAP_ANON, NOFD, 0) -> 0x8014000"),
        ("spawn a\nexpect EPERM a mmap 0 0 PROT_READ MAP_PRIVATE|MAP_ANON NOFD 0\n", 2,
         "expected EPERM, but a: mmap(0, 0, PROT_READ, MAP_PRIVATE|MAP_ANON, NOFD, 0) failed "
         "with EINVAL: EINVAL (22): mmap: R-MMAP-2: len is 0"),
        ("spawn a\nexpect EWHAT a munmap 0 4096\n", 2, "unknown errno or signal 'EWHAT'"),
        ("spawn a\na mmap 0 4096\n", 2, "mmap(addr, len, prot, flags, fd, off): missing"),
        ('spawn a\na shm_open "/x\n', 2, "cannot read '\"/x': is a quote missing?"),
        ("spawn a\nspawn a\n", 2, "a is already bound on line 1"),
        ("spawn PROT_READ\n", 1, "PROT_READ is a constant; choose another name"),
        ("fork nobody as b\n", 1, "unknown process 'nobody'"),
        ("x = 1\n", 1, "unknown command or process '1'"),
    ],
)  # fmt: skip
def test_script_errors_name_the_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, script: str, line: int, message: str
) -> None:
    code, _, err = run(capsys, "run", write(tmp_path, script))
    assert code == 1
    path = str(tmp_path / "s.qsim")
    first, text = err.splitlines()[:2]
    assert first.startswith(f"{path}, line {line}: {message}")
    assert text.strip() == script.splitlines()[line - 1].strip()


def test_a_failing_call_prints_the_rule(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    script = (
        "spawn a uid=1000\nspawn b uid=2000\na mmap_peer b 0 4096 PROT_READ MAP_SHARED NOFD 0\n"
    )
    code, _out, err = run(capsys, "run", write(tmp_path, script))
    assert code == 1
    assert "line 3: a: mmap_peer(3, 0, 4096, PROT_READ, MAP_SHARED, NOFD, 0) failed: " in err
    assert "EPERM (1): mmap_peer: R-PEER-3:" in err


# -- the language ------------------------------------------------------------------------------


def scenario() -> tuple[Scenario, io.StringIO]:
    out = io.StringIO()
    return Scenario(Kernel(trace=True), out, out), out


def test_language_statements() -> None:
    s, out = scenario()
    for line in [
        "spawn server uid=0 path=/proc/boot/srv",
        "spawn kid parent=server image=no",
        "fork server as child",
        "a = server mmap 0 3*4096 PROT_READ|PROT_WRITE MAP_PRIVATE|MAP_ANON NOFD 0",
        "server mprotect a+4096 4096 PROT_NONE",
        "r = server mapping_at a+4096",
        "o = server mem_offset a NOFD 4096",
        "server write_memory a b'xyz'",
        "expect SIGSEGV server read_memory a+4096 1",
        "exit child 7",
        "w = server waitpid child 0",
    ]:
        s.execute(line)
    server, kid = s.process("server"), s.process("kid")
    assert server.path == "/proc/boot/srv" and kid.ppid == server.pid and not kid.mappings()
    assert s.evaluate("r.prot") == C.PROT_NONE and s.evaluate("r.size") == 4096
    assert s.evaluate("w[1]") == 7 and s.evaluate("w[0]") == s.evaluate("child")
    assert isinstance(s.evaluate("o"), tuple)
    assert server.read_memory(s.evaluate("a"), 3) == b"xyz"  # type: ignore[arg-type]
    s.execute("print a r.end-r.start")
    s.execute("explain")
    s.execute("show kid")
    s.execute("pidin maps")
    text = out.getvalue()
    assert "a = 0x8014000\nr.end-r.start = 4096\n" in text
    assert "pid 2 called waitpid(4, 0) and it returned (4, 7)." in text
    assert f"pid {kid.pid}  /proc/boot/kid  uid 0  running  0 mappings" in text


def test_language_expect_failure_is_a_script_failure() -> None:
    s, _ = scenario()
    s.execute("spawn a")
    with pytest.raises(ScriptFailure) as info:
        s.execute("expect SIGSEGV a read_memory 0x8000000 1", 9)
    assert str(info.value).startswith("line 9: expected SIGSEGV, but the statement succeeded")
    with pytest.raises(ScriptError) as error:
        s.execute("a mmap 0 4096 PROT_READ MAP_PRIVATE|MAP_ANON NOFD 0 0", 10)
    assert not isinstance(error.value, ScriptFailure)
    assert "line 10: mmap(addr, len, prot, flags, fd, off): too many" in str(error.value)


def test_tokenize_quotes_and_comments() -> None:
    assert tokenize("  # only a comment") == []
    assert tokenize("x = a write_memory 0x1000 b'a # b' # c") == [
        "x",
        "=",
        "a",
        "write_memory",
        "0x1000",
        "b'a # b'",
    ]
    assert tokenize('a open path="/tmp/my file" O_RDWR') == [
        "a",
        "open",
        'path="/tmp/my file"',
        "O_RDWR",
    ]


def test_completion() -> None:
    s, _ = scenario()
    s.execute("spawn server")
    s.execute("fd = server shm_open /x O_RDWR|O_CREAT 0o600")
    assert s.complete("", "se") == ["server"]
    assert "spawn" in s.complete("", "")
    assert s.complete("server ", "mmap_p") == ["mmap_peer"]
    assert s.complete("a = server ", "munmap_") == [
        "munmap_device_io",
        "munmap_device_memory",
        "munmap_flags",
        "munmap_peer",
    ]
    assert s.complete("server mmap 0 4096 ", "PROT_READ|PROT_W") == ["PROT_READ|PROT_WRITE"]
    assert s.complete("server mmap 0 4096 PROT_READ|", "PROT_W") == ["PROT_WRITE"]  # readline
    assert s.complete("server mmap 0 4096 PROT_READ MAP_SHARED ", "f") == ["fd"]
    assert s.complete("expect ", "ESRC") == ["ESRCH"]
    assert s.complete("expect ESRCH ", "ser") == ["server"]
    assert s.complete("pidin ", "m") == ["mem", "maps"]
    assert s.complete("fork server ", "") == ["as"]


# -- shell -------------------------------------------------------------------------------------


def drive(lines: str) -> str:
    out = io.StringIO()
    shell = Shell(stdin=io.StringIO(lines), stdout=out)
    shell.cmdloop()
    return out.getvalue()


def test_shell_runs_the_language_and_survives_errors() -> None:
    text = drive(
        "spawn server uid=0\n"
        "a = server mmap 0 4096 PROT_READ MAP_PRIVATE|MAP_ANON NOFD 0\n"
        "\n"
        "server mmap 0 0 PROT_READ MAP_PRIVATE|MAP_ANON NOFD 0\n"
        "bogus\n"
        "print a\n"
        "pidin\n"
        "history\n"
        "quit\n"
        "print a\n"  # never read: quit left the loop
    )
    assert text.startswith(Shell.intro + "\n" + Shell.prompt)
    assert (
        "a = server: mmap(0, 4096, PROT_READ, MAP_PRIVATE|MAP_ANON, NOFD, 0) -> 0x8014000" in text
    )
    assert "error: server: mmap(0, 0, PROT_READ, MAP_PRIVATE|MAP_ANON, NOFD, 0) failed: " in text
    assert "R-MMAP-2: len is 0" in text
    assert "error: unknown command or process 'bogus'" in text
    assert "a = 0x8014000" in text
    assert HEADER in text
    assert "   6  pidin\n" in text and "   7  history\n" in text
    assert text.count("a = 0x8014000\n") == 1


def test_shell_help_exit_and_end_of_input() -> None:
    text = drive("help\nhelp mmap_peer\nhelp nothing\nexit\n")
    assert "spawn NAME [uid=N]" in text and "Calls: " in text
    assert "PROC mmap_peer PID ADDR LEN PROT FLAGS FD OFF" in text
    assert "error: no help for 'nothing'" in text
    assert drive("spawn a\n").endswith(Shell.prompt + "\n")  # end of input leaves


def test_shell_completion_hooks() -> None:
    shell = Shell(stdin=io.StringIO(""), stdout=io.StringIO())
    shell.onecmd("spawn server")
    assert "server" in shell.completenames("se")
    assert "quit" in shell.completenames("q") and "EOF" not in shell.completenames("")
    line = "server mmap 0 4096 PROT_"
    begidx = line.rindex(" ") + 1
    assert "PROT_EXEC" in shell.completedefault("PROT_", line, begidx, len(line))
    assert shell.complete_help("mmap_p", "help mmap_p", 5, 11) == ["mmap_peer"]


def test_R_SYS_4_cli_machine_options_choose_arch_and_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--arch and --qnx-version build the machine: armle-v7 puts the program at its
    PROGRAM_BASE 0x00100000, and 6.4 (x86 by default) places shared objects at SHMEM_BASE
    0x40100000 (R-SYS-4)."""
    code, out, _ = run(capsys, "pidin", "--arch", "armle-v7")
    assert code == 0 and "@100000 " in out
    script = tmp_path / "shm.qsim"
    script.write_text(
        'spawn s uid=0\nfd = s shm_open "/b" O_RDWR|O_CREAT 0o600\ns ftruncate fd 4096\n'
        "a = s mmap 0 4096 PROT_READ MAP_SHARED fd 0\n"
    )
    code, out, _ = run(capsys, "run", "--qnx-version", "6.4", str(script))
    assert code == 0 and "-> 0x40100000" in out
    code, _, _ = run(capsys, "run", "--qnx-version", "9.9", str(script))
    assert code == 2
