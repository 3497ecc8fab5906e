"""The example test file of the README ("Testing your port with qnxsim") is
``examples/test_port_example.py``, character for character, and it passes when pytest runs
it as a user would (the plugin from the entry point, no conftest)."""

from __future__ import annotations

from pathlib import Path

# pytester's inline runs drop the modules they import, and hypothesis's pytest plugin
# imports hypothesis in every run: imported here, it is imported (and rewritten) once.
import hypothesis  # noqa: F401
import pytest

import qnxsim.strategies  # noqa: F401

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "test_port_example.py"
README = ROOT / "README.md"
HEADING = "## Testing your port with qnxsim"
OPENING = "<!-- examples/test_port_example.py -->\n```python\n"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"README.md has no {HEADING!r} section"
    section = text[text.index(HEADING) :]
    assert OPENING in section, "the section has no example block"
    body = section[section.index(OPENING) + len(OPENING) :]
    return body[: body.index("```\n")]


def test_the_readme_example_is_the_example_file() -> None:
    assert readme_example() == EXAMPLE.read_text(encoding="utf-8")


def test_the_example_file_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_port_example=EXAMPLE.read_text(encoding="utf-8"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=6)


def test_the_example_catches_a_broken_port(pytester: pytest.Pytester) -> None:
    """The same tests against a server that maps the client's buffer read-write: the
    report names the wrong prot and shows the client's address space."""
    source = EXAMPLE.read_text(encoding="utf-8").replace(
        "theirs = server.mmap_peer(client_pid, 0, size, PROT_READ,",
        "theirs = server.mmap_peer(client_pid, 0, size, PROT_READ | PROT_WRITE,",
    )
    pytester.makepyfile(test_port_example=source)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "sees_what")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*has prot rw- (PROT_READ|PROT_WRITE), expected r-- (PROT_READ)*",
            "*>>*/dev/shmem/ring*@1000000000*rw- shm MAP_SHARED*",
            "*- qnxsim address spaces (pidin mem) -*",
        ]
    )
