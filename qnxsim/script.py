"""Scenario scripts: a line-oriented language that drives a Kernel (``qnxsim run``,
``qnxsim shell``).

One statement per line; ``#`` starts a comment; words are separated by blanks.

    spawn NAME [uid=N] [gid=N] [path=PATH] [parent=NAME] [image=yes|no]
                                  a new process called NAME (path /proc/boot/NAME)
    fork PARENT as CHILD          PARENT forks; the child is called CHILD
    exit NAME [STATUS]            the process exits
    [VAR =] PROC CALL ARG ...     PROC makes a simulated call (C name, C argument order);
                                  VAR = binds the result to a name
    expect ERRNO STATEMENT        the statement must fail with ERRNO (EINVAL, ESRCH ...)
                                  or fault with SIGSEGV / SIGBUS
    print EXPR ...                show values
    pidin [mem|maps]              QNX's `pidin mem` view, or every mapping record
    show PROC                     the mapping records of one process
    check                         Kernel.check_invariants()
    explain                       explain the last call (rule, changes)
    help [CALL]                   this text, or a call's signature

An argument (ARG, EXPR) is written without blanks: an integer (``4096``, ``0x1000``,
``0o600``, ``-1``); a QNX constant (``PROT_READ``, ``MAP_SHARED``, ``NOFD``, ``O_CREAT``,
``SHM_ANON``, ``RLIM_INFINITY`` ...); a bound name (a VAR, or a process NAME, which stands
for its pid); combined with ``| & + - * << >>``, e.g. ``PROT_READ|PROT_WRITE`` or
``a+4096``; ``VAR[0]`` indexes a tuple result and ``VAR.size`` reads a record field.
A word in quotes is a string (``"/buf"``), ``b"..."`` is bytes, and a bare word that
starts with ``/`` is a path.  ``NAME=ARG`` passes a keyword argument.

    spawn server uid=0
    spawn client uid=1000
    fd = server shm_open "/buf" O_RDWR|O_CREAT 0o600
    server ftruncate fd 8192
    a = server mmap 0 8192 PROT_READ|PROT_WRITE MAP_SHARED fd 0
    p = server mmap_peer client 0 8192 PROT_READ|PROT_WRITE MAP_SHARED fd 0
    server write_memory a "hello"         # a string is written as UTF-8 bytes
    client read_memory p 5
    expect ESRCH server mmap_peer 99999 0 4096 PROT_READ MAP_SHARED fd 0
    pidin

A call that fails stops a script with its errno and the rule that decided it, naming the
line; so do an ``expect`` that is not met and any error in the script itself.
"""

from __future__ import annotations

import ast
import cmd
import difflib
import operator
import re
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.access import MemoryFault
from qnxsim.addrspace import Mapping
from qnxsim.calls import CALLS as ROWS
from qnxsim.calls import Call
from qnxsim.errno import QnxError
from qnxsim.kernel import Kernel
from qnxsim.process import Process
from qnxsim.render import VIEWS, maps
from qnxsim.trace import explain, format_call, format_result

LANGUAGE = __doc__.split("\n\n", 1)[1] if __doc__ else ""

KEYWORDS = ("spawn", "fork", "exit", "expect", "print", "pidin", "show", "check", "explain")
#: Process methods a script may call: every row of the call table (simulated C calls,
#: memory access, introspection) but ``exit``, which is a statement of its own.
CALLS: tuple[str, ...] = tuple(sorted(name for name in ROWS if name != "exit"))
CONSTANTS: dict[str, object] = {
    name: value
    for name, value in vars(C).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, int)
}
CONSTANTS.update(SHM_ANON=C.SHM_ANON)
ERRNOS: dict[str, int] = {
    name: value
    for name, value in vars(E).items()
    if name.startswith("E") and name.isupper() and isinstance(value, int)
}
SIGNALS = {"SIGSEGV": C.SIGSEGV, "SIGBUS": C.SIGBUS}
SPAWN_OPTIONS = ("uid=", "gid=", "path=", "parent=", "image=")

_NAME = re.compile(r"[A-Za-z_]\w*\Z")
_KEYWORD_ARG = re.compile(r"([A-Za-z_]\w*)=(.+)\Z", re.S)
_STRING = r"""[bB]?"(?:[^"\\]|\\.)*"|[bB]?'(?:[^'\\]|\\.)*'"""
_TOKEN = re.compile(
    rf"""\s*(?:(?P<comment>\#.*)|(?P<word>(?:[A-Za-z_]\w*=)?(?:{_STRING})|[^\s"'\#]+))""",
    re.S,
)
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
#: Limits of one argument word, so that no script makes the simulator build unbounded
#: Python objects or recurse without end (DESIGN, "Bad input"): its length in characters,
#: its nesting (operators and brackets), the bits of any number it computes, and a shift.
MAX_WORD = 1000
MAX_DEPTH = 50
MAX_BITS = 4096
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
}


def _check_utf8(line: str) -> None:
    """ScriptError for a line read with ``surrogateescape`` that held bytes not in UTF-8."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = line[error.start].encode("utf-8", "surrogateescape")
        raise ScriptError(
            f"byte {bad.hex()} at column {error.start + 1} is not UTF-8; scripts are UTF-8 text"
        ) from None


def _short(text: str) -> str:
    """``text`` quoted, cut to 40 characters for a message."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _capped(value: Any) -> Any:
    """``value``, or ScriptError when it is an int wider than MAX_BITS bits."""
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise ScriptError(f"a number of {value.bit_length()} bits; at most {MAX_BITS}")
    return value


class ScriptError(Exception):
    """A line of a script that cannot run: bad syntax, an unknown name or call."""

    def __init__(self, message: str, lineno: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno

    def __str__(self) -> str:
        return f"line {self.lineno}: {self.message}" if self.lineno else self.message


class ScriptFailure(ScriptError):
    """A simulated call failed (with the rule that decided it) or an ``expect`` was not met."""


class _Failed(Exception):
    """A simulated call raised QnxError or MemoryFault; ``what`` is the call as written."""

    def __init__(self, what: str, error: QnxError | MemoryFault) -> None:
        super().__init__(what)
        self.what = what
        self.error = error


def tokenize(line: str) -> list[str]:
    """The words of a line, without its comment; quoted strings stay one word.

    >>> tokenize('fd = server shm_open "/my buf" O_RDWR|O_CREAT 0o600  # make it')
    ['fd', '=', 'server', 'shm_open', '"/my buf"', 'O_RDWR|O_CREAT', '0o600']
    """
    words: list[str] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:
            rest = line[pos:].strip()
            if not rest:
                break
            raise ScriptError(f"cannot read {rest!r}: is a quote missing?")
        if m.group("comment") is not None:
            break
        words.append(m.group("word"))
        pos = m.end()
    return words


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _binding_problem(row: Call, given: int, keywords: dict[str, object]) -> str:
    """Why ``given`` positional arguments and ``keywords`` do not fit ``row``, or ""."""
    if given > len(row.args) and row.variadic is None:
        return f"too many arguments: it takes at most {len(row.args)}, {given} given"
    for i, arg in enumerate(row.args):
        if i < given and arg.name in keywords:
            return f"multiple values for argument {arg.name!r}"
        if i >= given and arg.name not in keywords and not arg.optional:
            return f"missing a required argument: {arg.name!r}"
    return ""


def show_value(value: object) -> str:
    """A value as the scripts print it: large integers in hex, records one per line."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value) if -0x10000 < value < 0x10000 else hex(value)
    if isinstance(value, Process):
        return f"process pid {value.pid} ({value.path})"
    if isinstance(value, tuple) and value and all(isinstance(v, Mapping) for v in value):
        return "\n".join(repr(v) for v in value)
    return repr(value)


class Scenario:
    """A kernel, the names a script has bound, and the statements that drive them.

    Methods: ``execute`` (one line), ``run`` (a whole script, returns an exit code),
    ``evaluate`` (one argument word), ``complete`` (candidates for the shell).
    """

    def __init__(
        self,
        kernel: Kernel | None = None,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        *,
        echo: bool = True,
        explain_calls: bool = False,
    ) -> None:
        self.kernel = kernel if kernel is not None else Kernel(trace=True)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.echo = echo
        self.explain_calls = explain_calls
        self.names: dict[str, object] = {}
        #: The line that bound each process name (for the error when it is bound again).
        self.bound_at: dict[str, int] = {}
        self._lineno = 0

    # -- running ------------------------------------------------------------------------

    def run(self, lines: Iterable[str] | str, source: str = "<script>") -> int:
        """Execute every line; on the first error write ``SOURCE, line N: message`` and
        the line to ``err`` and return 1; return 0 when every line ran.

        ``lines`` is a whole script (a str) or its lines (any iterable of str).
        """
        if isinstance(lines, str):
            lines = lines.splitlines()
        elif isinstance(lines, bytes | bytearray):
            raise TypeError("run takes a script as str or an iterable of lines, not bytes")
        for lineno, line in enumerate(lines, 1):
            if not isinstance(line, str):
                raise TypeError(f"line {lineno} of the script is {type(line).__name__}, not str")
            try:
                self.execute(line, lineno)
            except ScriptError as error:
                shown = line.strip().encode("utf-8", "surrogateescape")
                text = shown.decode("utf-8", "backslashreplace")
                self.err.write(f"{source}, line {lineno}: {error.message}\n    {text}\n")
                return 1
        return 0

    def execute(self, line: str, lineno: int = 0) -> object:
        """Run one statement and return its value.  ScriptError / ScriptFailure name the line."""
        mark = len(self.kernel.trace)
        self._lineno = lineno
        try:
            _check_utf8(line)
            words = tokenize(line)
            if not words:
                return None
            value, text = self._statement(words)
        except _Failed as failed:
            self._explain_new(mark)
            raise ScriptFailure(f"{failed.what} failed: {failed.error}", lineno) from None
        except ScriptError as error:
            self._explain_new(mark)
            raise type(error)(error.message, lineno) from None
        except (MemoryError, RecursionError) as error:  # a limit this module missed
            what = "too much memory" if isinstance(error, MemoryError) else "too deep nesting"
            raise ScriptError(f"the statement needs {what} to evaluate", lineno) from None
        if text and self.echo:
            self.out.write(text + "\n")
        self._explain_new(mark)
        return value

    def _explain_new(self, mark: int) -> None:
        if self.explain_calls:
            for event in self.kernel.trace[mark:]:
                self.out.write(f"  # {explain(event)}\n")

    def _statement(self, words: list[str]) -> tuple[object, str]:
        head = words[0]
        if len(words) >= 2 and words[1] == "=":
            return self._bind(words)
        if head == "expect":
            return self._expect(words)
        handler = {
            "spawn": self._spawn,
            "fork": self._fork,
            "exit": self._exit,
            "print": self._print,
            "pidin": self._pidin,
            "show": self._show,
            "check": self._check,
            "explain": self._explain,
            "help": self._help,
        }.get(head)
        if handler is not None:
            return handler(words)
        return self._call(words)

    # -- statements ---------------------------------------------------------------------

    def _bind(self, words: list[str]) -> tuple[object, str]:
        var = words[0]
        self._check_new_name(var)
        if len(words) < 3:
            raise ScriptError(f"nothing to bind to {var}")
        value, text = self._statement(words[2:])
        self._bind_name(var, value)
        return value, f"{var} = {text}" if text else f"{var} = {show_value(value)}"

    def _check_new_name(self, name: str, process: bool = False) -> None:
        """A name a statement may bind; a process name is bound once (``process`` True:
        the statement binds a process, so no earlier binding of the name may be replaced)."""
        if name in self.names and (process or isinstance(self.names[name], Process)):
            where = self.bound_at.get(name)
            at = f" on line {where}" if where else ""
            old = show_value(self.names[name])
            raise ScriptError(f"{name} is already bound{at} ({old}); choose another name")
        if not _NAME.match(name):
            raise ScriptError(f"{name!r} is not a valid name (letters, digits, _)")
        if name in CONSTANTS or name in ERRNOS:
            raise ScriptError(f"{name} is a constant; choose another name")
        if name in KEYWORDS or name in ("help", "as"):
            raise ScriptError(f"{name} is a keyword; choose another name")

    def _bind_name(self, name: str, value: object) -> None:
        if isinstance(value, Process) and name in self.names:
            self._check_new_name(name, process=True)
        self.names[name] = value
        self.bound_at[name] = self._lineno

    def _expect(self, words: list[str]) -> tuple[object, str]:
        if len(words) < 3:
            raise ScriptError("expect needs an errno name and a statement: expect EINVAL ...")
        want = words[1]
        if want not in ERRNOS and want not in SIGNALS:
            raise ScriptError(f"unknown errno or signal {want!r}{_suggest(want, ERRNOS)}")
        try:
            _, text = self._statement(words[2:])
        except _Failed as failed:
            error = failed.error
            if isinstance(error, QnxError):
                got = error.name
                met = want in ERRNOS and error.errno == ERRNOS[want]
            else:
                got = {C.SIGSEGV: "SIGSEGV", C.SIGBUS: "SIGBUS"}.get(error.signo, "a signal")
                met = SIGNALS.get(want) == error.signo
            if not met:
                raise ScriptFailure(
                    f"expected {want}, but {failed.what} failed with {got}: {error}"
                ) from None
            return None, f"expect {want}: {failed.what} -> {error}"
        done = text or " ".join(words[2:])
        raise ScriptFailure(f"expected {want}, but the statement succeeded: {done}")

    def _spawn(self, words: list[str]) -> tuple[object, str]:
        if len(words) < 2:
            raise ScriptError("spawn needs a name: spawn NAME [uid=N] [gid=N] ...")
        name = words[1]
        self._check_new_name(name, process=True)
        options = dict(self._keyword(w) for w in words[2:])
        unknown = set(options) - {o.rstrip("=") for o in SPAWN_OPTIONS}
        if unknown:
            raise ScriptError(f"spawn takes {', '.join(SPAWN_OPTIONS)} not {sorted(unknown)}")
        path = self._typed(options.get("path", f"/proc/boot/{name}"), str, "path")
        uid = self._typed(options.get("uid", 0), int, "uid")
        gid = self._typed(options.get("gid", 0), int, "gid")
        image = options.get("image", "yes")
        if image not in ("yes", "no", 1, 0):
            raise ScriptError("image= takes yes or no")
        parent = None
        if "parent" in options:
            parent = self.process(str(options["parent"]))
        what = f"spawn {name}"
        try:
            proc = self.kernel.spawn(
                path, uid=uid, gid=gid, parent=parent, image=image in ("yes", 1)
            )
        except (QnxError, MemoryFault) as error:
            raise _Failed(what, error) from None
        except (TypeError, ValueError) as error:
            raise ScriptError(f"{what}: {error}") from None
        self._bind_name(name, proc)
        return proc, f"{what}: pid {proc.pid} ({proc.path}, uid {proc.uid})"

    def _keyword(self, word: str) -> tuple[str, object]:
        m = _KEYWORD_ARG.match(word)
        if m is None:
            raise ScriptError(f"expected NAME=VALUE, not {word!r}")
        key, raw = m.groups()
        if key == "image" or key == "parent":
            return key, raw
        return key, self.evaluate(raw)

    @staticmethod
    def _typed(value: object, kind: type, what: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ScriptError(f"{what} must be {'a number' if kind is int else 'a string'}")
        return value

    def _fork(self, words: list[str]) -> tuple[object, str]:
        if len(words) not in (2, 4) or (len(words) == 4 and words[2] != "as"):
            raise ScriptError("fork takes: fork PARENT as CHILD")
        parent = self.process(words[1])
        child_name = words[3] if len(words) == 4 else None
        if child_name is not None:
            self._check_new_name(child_name, process=True)
        what = f"{words[1]}: fork()"
        try:
            pid = parent.fork()
        except (QnxError, MemoryFault) as error:
            raise _Failed(what, error) from None
        child = self.kernel.process(pid)
        if child_name is None:
            return pid, f"{what} -> pid {pid}"
        self._bind_name(child_name, child)
        return child, f"fork {words[1]} as {child_name}: pid {pid}"

    def _exit(self, words: list[str]) -> tuple[object, str]:
        if len(words) not in (2, 3):
            raise ScriptError("exit takes: exit NAME [STATUS]")
        proc = self.process(words[1])
        status = self._typed(self.evaluate(words[2]), int, "status") if len(words) == 3 else 0
        what = f"{words[1]}: exit({status})"
        try:
            proc.exit(status)
        except (QnxError, MemoryFault) as error:
            raise _Failed(what, error) from None
        return None, what

    def _print(self, words: list[str]) -> tuple[object, str]:
        for word in words[1:]:
            self.out.write(f"{word} = {show_value(self.evaluate(word))}\n")
        return None, ""

    def _pidin(self, words: list[str]) -> tuple[object, str]:
        view = words[1] if len(words) > 1 else "mem"
        if len(words) > 2 or view not in VIEWS:
            raise ScriptError(f"pidin takes one of {', '.join(VIEWS)}")
        self.out.write(self.kernel.pidin(view) + "\n")
        return None, ""

    def _show(self, words: list[str]) -> tuple[object, str]:
        if len(words) < 2:
            raise ScriptError("show takes process names: show PROC ...")
        procs = [self.process(w) for w in words[1:]]
        with self.kernel.lock:
            self.out.write(maps(self.kernel, procs) + "\n")
        return None, ""

    def _check(self, words: list[str]) -> tuple[object, str]:
        try:
            self.kernel.check_invariants()
        except AssertionError as error:
            raise ScriptFailure(f"an invariant does not hold: {error}") from None
        return None, "invariants hold"

    def _explain(self, words: list[str]) -> tuple[object, str]:
        if not self.kernel.trace:
            raise ScriptError("nothing to explain: no call has been traced yet")
        self.out.write(explain(self.kernel.trace[-1]) + "\n")
        return None, ""

    def _help(self, words: list[str]) -> tuple[object, str]:
        self.out.write(self.help_text(" ".join(words[1:])))
        return None, ""

    def help_text(self, topic: str = "") -> str:
        """The language reference, or the signature and summary of one call."""
        if not topic:
            calls = ", ".join(CALLS)
            return f"{LANGUAGE.rstrip()}\n\nCalls: {calls}\n"
        if topic not in CALLS:
            raise ScriptError(f"no help for {topic!r}{_suggest(topic, CALLS)}")
        row = ROWS[topic]
        doc = " ".join((getattr(Process, topic).__doc__ or "").split("\n\n")[0].split())
        params = [a.name for a in row.args] + ([row.variadic.name] if row.variadic else [])
        return f"PROC {topic} {' '.join(p.upper() for p in params)}\n    {doc}\n"

    def _call(self, words: list[str]) -> tuple[object, str]:
        head = words[0]
        if head not in self.names:
            choices = [*KEYWORDS, *self.processes()]
            raise ScriptError(f"unknown command or process {head!r}{_suggest(head, choices)}")
        proc = self.process(head)
        if len(words) < 2:
            raise ScriptError(f"what should {head} do? write: {head} CALL ARG ...")
        call = words[1]
        if call not in CALLS:
            raise ScriptError(f"unknown call {call!r}{_suggest(call, CALLS)}")
        method = getattr(proc, call)
        row = ROWS[call]
        names = [a.name for a in row.args]
        args: list[object] = []
        kwargs: dict[str, object] = {}
        for word in words[2:]:
            m = _KEYWORD_ARG.match(word)
            if m is not None and m.group(1) in names:
                kwargs[m.group(1)] = self._argument(m.group(2), row, m.group(1))
            else:
                name = names[len(args)] if len(args) < len(names) else ""
                args.append(self._argument(word, row, name))
        problem = _binding_problem(row, len(args), kwargs)
        if problem:
            shown = [*names, *([f"*{row.variadic.name}"] if row.variadic else [])]
            raise ScriptError(f"{call}({', '.join(shown)}): {problem}")
        extra = "".join(f", {k}={show_value(v)}" for k, v in kwargs.items())
        text = format_call(call, tuple(args))
        what = f"{head}: {text[:-1]}{extra})"
        try:
            value = method(*args, **kwargs)
        except (QnxError, MemoryFault) as error:
            raise _Failed(what, error) from None
        except (TypeError, ValueError, OverflowError, LookupError) as error:
            raise ScriptError(f"{what}: {error}") from None
        if value is None:
            return value, what
        return value, f"{what} -> {self._result(call, value)}"

    @staticmethod
    def _result(call: str, value: object) -> str:
        if isinstance(value, Process) or (
            isinstance(value, tuple) and value and isinstance(value[0], Mapping)
        ):
            return ("\n" if isinstance(value, tuple) else "") + show_value(value)
        return format_result(call, value)

    def _argument(self, word: str, row: Call, name: str) -> object:
        value = self.evaluate(word)
        wanted = next((a.convert for a in row.args if a.name == name), None)
        if isinstance(value, str) and wanted == "bytes":
            return value.encode()
        return value

    # -- names and values ---------------------------------------------------------------

    def processes(self) -> list[str]:
        """The names bound to processes."""
        return [n for n, v in self.names.items() if isinstance(v, Process)]

    def process(self, name: str) -> Process:
        """The process bound to ``name``; ScriptError if there is none."""
        value = self.names.get(name)
        if isinstance(value, Process):
            return value
        if value is None:
            raise ScriptError(f"unknown process {name!r}{_suggest(name, self.processes())}")
        raise ScriptError(f"{name} is {show_value(value)}, not a process")

    def evaluate(self, word: str) -> object:
        """The value of one argument word (see the module docstring).

        >>> s = Scenario(Kernel())
        >>> s.evaluate("PROT_READ|PROT_WRITE") == C.PROT_READ | C.PROT_WRITE
        True
        >>> s.evaluate("/dev/shmem/buf"), s.evaluate('b"hi"'), s.evaluate("0x10+1")
        ('/dev/shmem/buf', b'hi', 17)
        """
        if word.startswith("/"):
            return word
        quoted = word[:1] in "\"'" or word[:2] in ('b"', "b'", 'B"', "B'")
        if not quoted and len(word) > MAX_WORD:
            raise ScriptError(f"an argument of {len(word)} characters; at most {MAX_WORD}")
        operators = 0 if quoted else sum(word.count(c) for c in "(+-*~|&^<>%/[")
        if operators > 2 * MAX_DEPTH:  # a cheap bound before the parser sees it
            raise ScriptError(f"{_short(word)} has {operators} operators; at most {2 * MAX_DEPTH}")
        try:
            tree = ast.parse(word, mode="eval")
        except SyntaxError:
            raise ScriptError(
                f"cannot read {_short(word)} as a number, constant, name or string"
            ) from None
        except (MemoryError, RecursionError):
            raise ScriptError(f"{_short(word)} is nested too deeply") from None
        try:
            return self._eval(tree.body, 0)
        except ScriptError:
            raise
        except (TypeError, ValueError, ArithmeticError, IndexError) as error:
            raise ScriptError(f"cannot evaluate {_short(word)}: {error}") from None

    def _eval(self, node: ast.expr, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise ScriptError(f"an argument nested more than {MAX_DEPTH} deep")
        depth += 1
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            raise ScriptError(
                f"{node.value} is not a number here: C has no bool parameter; write "
                f"{int(node.value)}"
            )
        if isinstance(node, ast.Constant) and isinstance(node.value, int | str | bytes):
            return _capped(node.value)
        if isinstance(node, ast.Name):
            return self._lookup(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = self._int(node.left, depth), self._int(node.right, depth)
            if isinstance(node.op, ast.LShift | ast.RShift) and not 0 <= right <= MAX_BITS:
                raise ScriptError(
                    f"a shift by {_short(str(right))}; shifts go from 0 to {MAX_BITS}"
                )
            return _capped(_BINOPS[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self._int(node.operand, depth))
        if isinstance(node, ast.Subscript):
            base, index = self._eval(node.value, depth), self._int(node.slice, depth)
            if not isinstance(base, tuple):
                raise ScriptError(f"{ast.unparse(node.value)} is not a tuple")
            return base[index]
        if isinstance(node, ast.Attribute) and not node.attr.startswith("_"):
            base = self._eval(node.value, depth)
            fields = {a.name for a in getattr(type(base), "__attrs_attrs__", ())}
            if node.attr not in fields:
                raise ScriptError(f"{ast.unparse(node.value)} has no field {node.attr!r}")
            return getattr(base, node.attr)
        raise ScriptError(f"{ast.unparse(node)!r} is not a number, constant, name or string")

    def _int(self, node: ast.expr, depth: int) -> int:
        value = self._eval(node, depth)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScriptError(f"{ast.unparse(node)} is {show_value(value)}, not a number")
        return value

    def _lookup(self, name: str) -> object:
        if name in self.names:
            value = self.names[name]
            return value.pid if isinstance(value, Process) else value
        if name in CONSTANTS:
            return CONSTANTS[name]
        kind = "constant" if name.isupper() else "name"
        choices = [*CONSTANTS, *self.names] if name.isupper() else [*self.names, *CONSTANTS]
        raise ScriptError(f"unknown {kind} {name!r}{_suggest(name, choices)}")

    # -- completion ---------------------------------------------------------------------

    def complete(self, before: str, text: str) -> list[str]:
        """Candidates for the word ``text`` that follows ``before`` on the line.

        >>> s = Scenario(Kernel())
        >>> s.complete("", "sp"), s.complete("x = p mmap 0 4096 ", "PROT_RE")
        (['spawn'], ['PROT_READ'])
        """
        words = before.split()
        head, sep, part = text.rpartition("|")
        if before and not before[-1].isspace():  # the word began at a delimiter
            words, part, head, sep = words[:-1], text, "", ""
            inner = True
        else:
            inner = False
        if len(words) >= 2 and words[1] == "=":
            words = words[2:]
        if words[:1] == ["expect"]:
            if len(words) == 1 and not inner:
                return sorted(n for n in {*ERRNOS, *SIGNALS} if n.startswith(text))
            words = words[2:]
        values = sorted({*CONSTANTS, *self.names})
        if inner:
            options = values
        elif not words:
            options = sorted({*KEYWORDS, "help", *self.processes()})
        elif words[0] in ("fork", "exit", "show"):
            options = ["as"] if words[0] == "fork" and len(words) == 2 else self.processes()
        elif words[0] == "spawn":
            options = list(SPAWN_OPTIONS) if len(words) >= 2 else []
        elif words[0] == "pidin":
            options = list(VIEWS)
        elif words[0] == "help" or (words[0] in self.processes() and len(words) == 1):
            options = list(CALLS)
        else:
            options = values
        return [head + sep + o for o in options if o.startswith(part)]


class Shell(cmd.Cmd):
    """``qnxsim shell``: the scenario language at a prompt, with history and completion.

    ``quit``, ``exit`` alone, or end of input leave; ``history`` lists the lines entered.
    A failing line prints its error and the shell goes on.
    """

    intro = "qnxsim shell: the scenario language of `qnxsim run`. Type help, or quit to leave."
    prompt = "qnxsim> "

    def __init__(
        self,
        scenario: Scenario | None = None,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        *,
        interactive: bool = True,
        stderr: IO[str] | None = None,
    ) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        if stdin is not None or not interactive:
            self.use_rawinput = False
        self.interactive = interactive
        if not interactive:  # input from a pipe or file: no banner, no prompt (as python)
            self.intro = ""
            self.prompt = ""
        self.errors_out = stderr if stderr is not None else self.stdout
        self.scenario = scenario or Scenario(out=self.stdout, err=self.errors_out)
        self.lineno = 0
        #: How many lines failed; ``qnxsim shell`` exits 1 when any did and stdin is not
        #: a terminal (as sqlite3 does).
        self.failures = 0
        self.history: list[str] = []

    def precmd(self, line: str) -> str:
        if line.strip() and line != "EOF":
            self.history.append(line.rstrip("\n"))
        return "quit" if line.strip() == "exit" else line

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> None:
        self.lineno += 1
        try:
            self.scenario.execute(line, self.lineno)
        except ScriptError as error:
            self.failures += 1
            where = "" if self.interactive else f"line {self.lineno}: "
            self.errors_out.write(f"error: {where}{error.message}\n")

    def do_help(self, arg: str) -> bool:
        """help [CALL]: the language, or one call's arguments."""
        try:
            self.stdout.write(self.scenario.help_text(arg.strip()))
        except ScriptError as error:
            self.stdout.write(f"error: {error.message}\n")
        return False

    def do_history(self, arg: str) -> bool:
        """history: the lines entered so far."""
        for i, line in enumerate(self.history, 1):
            self.stdout.write(f"{i:4}  {line}\n")
        return False

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell."""
        return True

    def do_EOF(self, arg: str) -> bool:
        if self.interactive:
            self.stdout.write("\n")
        return True

    def completenames(self, text: str, *ignored: Any) -> list[str]:
        return sorted({*self.scenario.complete("", text), *super().completenames(text)} - {"EOF"})

    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return self.scenario.complete(line[:begidx], text)

    def complete_help(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        return [c for c in CALLS if c.startswith(text)]


__all__ = ["CALLS", "Scenario", "ScriptError", "ScriptFailure", "Shell", "tokenize"]
