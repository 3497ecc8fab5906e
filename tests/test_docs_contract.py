"""The documentation contract (STYLE: sortedcontainers): every call states its cost, the
class docstrings of Kernel and Process list every public method by purpose, and the closed
sets (mapping kind, object kind, process state) are Literal types that mypy checks.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import get_args

import pytest
from support import mypy_strict

from qnxsim import Kernel, Process
from qnxsim.addrspace import Mapping
from qnxsim.calls import TABLE, Call
from qnxsim.objects import KINDS, MappingKind, ObjectKind
from qnxsim.process import ProcessState

ROOT = Path(__file__).resolve().parent.parent


def public_methods(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if not n.startswith("_") and inspect.isfunction(v)}


def listed(cls: type) -> set[str]:
    return set(re.findall(r"``(\w+)``", cls.__doc__ or ""))


@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.name)
def test_every_call_method_states_its_cost(row: Call) -> None:
    doc = inspect.getdoc(getattr(Process, row.name)) or ""
    assert re.search(r"^Cost: O\(", doc, re.M), f"Process.{row.name} does not state its cost"


@pytest.mark.parametrize("cls", [Kernel, Process], ids=lambda c: c.__name__)
def test_the_class_docstring_lists_every_public_method_by_purpose(cls: type) -> None:
    assert "Methods by purpose" in (cls.__doc__ or "")
    missing = public_methods(cls) - listed(cls)
    assert not missing, f"{cls.__name__}'s docstring does not list {sorted(missing)}"


def test_kernel_docstring_lists_its_configuration() -> None:
    properties = {n for n, v in vars(Kernel).items() if isinstance(v, property)}
    assert properties <= listed(Kernel)


def test_closed_sets_are_literal_types() -> None:
    assert get_args(MappingKind) == KINDS
    assert set(get_args(ObjectKind)) - {"dir", "tymem"} == set(KINDS[:6])
    assert get_args(ProcessState) == ("running", "zombie")
    assert inspect.get_annotations(Mapping)["kind"] == "MappingKind"


def test_a_live_process_and_a_zombie_have_the_two_states() -> None:
    k = Kernel()
    parent = k.spawn(image=False)
    child = parent.spawn(image=False)
    assert (parent.state, child.state) == ("running", "running")
    child.exit(0)
    assert child.state == "zombie"


def test_mypy_rejects_a_misspelt_kind_or_state(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    out = mypy_strict(
        tmp_path,
        "use_kinds.py",
        "from qnxsim import Process\n"
        "from qnxsim.testing import assert_mapped\n\n\n"
        "def use(p: Process) -> bool:\n"
        '    assert_mapped(p, 0x1000, 4096, kind="shared-anon")\n'
        '    assert_mapped(p, 0x1000, 4096, kind="sahred-anon")\n'
        '    return p.state == "zombi" or p.mappings()[0].kind == "anno"\n',
    )
    assert 'use_kinds.py:7: error: Argument "kind" to "assert_mapped"' in out, out
    assert out.count("use_kinds.py:8: error: Non-overlapping equality check") == 2, out
    assert out.count("error:") == 3, out
