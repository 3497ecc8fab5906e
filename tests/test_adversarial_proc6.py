"""R-PROC-6 under hostile calls: procnto's handle (pid 1) makes no calls (EPERM), and a
stale Process handle (its pid reaped, or made after a snapshot that was restored) fails
every call with ESRCH and never acts on the live pid table."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_adversarial import ROWS, World, draw_args, invoke

from qnxsim import MemoryFault, QnxError
from qnxsim import errno as E

#: Python-level views and memory access are not calls of the process (R-PROC-6 names the
#: simulated calls); they may answer for any handle.
NOT_CALLS = {"mappings", "mapping_at", "read_memory", "write_memory", "check_access"}
CALLS = sorted(set(ROWS) - NOT_CALLS)


def stale_world() -> tuple[World, object]:
    w = World()
    snap = w.k.snapshot()
    late = w.k.spawn(uid=0, image=False)  # made after the snapshot ...
    w.k.restore(snap)  # ... so after the restore its pid is not in the table
    return w, late


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(data=st.data())
def test_R_PROC_6_procnto_and_stale_handles_make_no_calls(data: st.DataObject) -> None:
    w, late = stale_world()
    who = data.draw(st.sampled_from(["procnto", "stale"]), label="caller")
    caller = w.procnto if who == "procnto" else late
    name = data.draw(st.sampled_from(CALLS), label="call")
    args, wrong = draw_args(data, ROWS[name], w)
    before = w.observe()
    want = E.EPERM if who == "procnto" else E.ESRCH
    try:
        result = invoke(caller, name, args)  # type: ignore[arg-type]
    except QnxError as err:
        assert err.errno == want, f"{who} {name}: {err}"
        assert "R-PROC-6" in err.reason
    except (TypeError, ValueError):
        assert wrong or name in ("read", "pread"), name
    except MemoryFault:
        pytest.fail(f"{who} {name}: a fault from a handle that makes no calls")
    else:  # a call that returns its error number (R-MADV-1, R-CALL-1) returns it
        failure = ROWS[name].failure
        got = result[0] if failure == "errno_and_result" else result
        if failure not in ("errno", "errno_and_result") or got != want:
            pytest.fail(f"{who} {name}{tuple(args)} returned {result!r} (R-PROC-6)")
    assert w.observe() == before
    w.k.check_invariants()
