"""qnxsim.errno and qnxsim.constants against SPEC section 18 (QNX 8.0 values).

The numbers written as literals here are the contract from SPEC section 18; everywhere else
code and tests use the names.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qnxsim import constants as c
from qnxsim import errno as qerrno
from qnxsim.constants import MAP_FLAG_NAMES, PROT_NAMES, flag_names
from qnxsim.errno import QnxError, errorcode, strerror


def _errno_names() -> dict[str, int]:
    return {
        name: value
        for name, value in vars(qerrno).items()
        if name.startswith("E") and name.isupper() and isinstance(value, int)
    }


# --- errno numbers (SPEC 18) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EOK", 0),
        ("EPERM", 1),
        ("ENOENT", 2),
        ("ESRCH", 3),
        ("EINTR", 4),
        ("EIO", 5),
        ("ENXIO", 6),
        ("EBADF", 9),
        ("EAGAIN", 11),
        ("ENOMEM", 12),
        ("EACCES", 13),
        ("EFAULT", 14),
        ("EBUSY", 16),
        ("EEXIST", 17),
        ("ENODEV", 19),
        ("EINVAL", 22),
        ("EMFILE", 24),
        ("ENOSPC", 28),
        ("EDEADLK", 45),
        ("ENOLCK", 46),
        ("ECANCELED", 47),
        ("ENOTSUP", 48),
        ("EDQUOT", 49),
        ("EOWNERDEAD", 58),
        ("ETIME", 62),
        ("EBADMSG", 77),
        ("ENAMETOOLONG", 78),
        ("EOVERFLOW", 79),
        ("EBADFD", 81),
        ("EILSEQ", 88),
        ("ENOSYS", 89),
        ("ELOOP", 90),
        ("ERESTART", 91),
        ("ENOTEMPTY", 93),
        ("ENOTRECOVERABLE", 95),
        ("EOPNOTSUPP", 103),
        ("ESTALE", 122),
        ("EINPROGRESS", 236),
        ("EALREADY", 237),
        ("ETIMEDOUT", 260),
    ],
)
def test_errno_values_match_spec(name: str, value: int) -> None:
    assert getattr(qerrno, name) == value


def test_ewouldblock_is_eagain() -> None:
    assert qerrno.EWOULDBLOCK == qerrno.EAGAIN == 11
    assert errorcode[11] == "EAGAIN"
    assert qerrno.ALIASES == {"EWOULDBLOCK": "EAGAIN"}


def test_enotsup_and_eopnotsupp_are_distinct_on_qnx() -> None:
    assert errorcode[qerrno.ENOTSUP] == "ENOTSUP"
    assert errorcode[qerrno.EOPNOTSUPP] == "EOPNOTSUPP"


def test_networking_range_is_present() -> None:
    expected = {
        "ENOTSOCK": 238,
        "EDESTADDRREQ": 239,
        "EMSGSIZE": 240,
        "EPROTOTYPE": 241,
        "ENOPROTOOPT": 242,
        "EPROTONOSUPPORT": 243,
        "ESOCKTNOSUPPORT": 244,
        "EPFNOSUPPORT": 246,
        "EAFNOSUPPORT": 247,
        "EADDRINUSE": 248,
        "EADDRNOTAVAIL": 249,
        "ENETDOWN": 250,
        "ENETUNREACH": 251,
        "ENETRESET": 252,
        "ECONNABORTED": 253,
        "ECONNRESET": 254,
        "ENOBUFS": 255,
        "EISCONN": 256,
        "ENOTCONN": 257,
        "ESHUTDOWN": 258,
        "ETOOMANYREFS": 259,
        "ETIMEDOUT": 260,
        "ECONNREFUSED": 261,
        "EHOSTDOWN": 264,
        "EHOSTUNREACH": 265,
        "EBADRPC": 272,
        "ERPCMISMATCH": 273,
        "EPROGUNAVAIL": 274,
        "EPROGMISMATCH": 275,
        "EPROCUNAVAIL": 276,
        "ENOREMOTE": 300,
        "ENONDP": 301,
        "EBADFSYS": 302,
        "EMORE": 309,
        "ECTRLTERM": 310,
        "ENOLIC": 311,
        "ESRVRFAULT": 312,
        "EENDIAN": 313,
    }
    for name, value in expected.items():
        assert getattr(qerrno, name) == value, name
        assert errorcode[value] == name


def test_errorcode_round_trip_for_every_name() -> None:
    names = _errno_names()
    assert len(names) > 130
    for name, value in names.items():
        assert errorcode[value] == qerrno.ALIASES.get(name, name)
    for value, name in errorcode.items():
        assert getattr(qerrno, name) == value
        assert name not in qerrno.ALIASES


def test_numbers_are_unique_apart_from_aliases() -> None:
    canonical = {n: v for n, v in _errno_names().items() if n not in qerrno.ALIASES}
    assert len(set(canonical.values())) == len(canonical)
    assert set(errorcode) == set(canonical.values())


# --- strerror ------------------------------------------------------------------------------


def test_strerror_known() -> None:
    assert strerror(qerrno.EINVAL) == "Invalid argument"
    assert strerror(qerrno.EPERM) == "Operation not permitted"
    assert strerror(qerrno.ENOENT) == "No such file or directory"
    assert strerror(qerrno.ESRCH) == "No such process"
    assert strerror(qerrno.EACCES) == "Permission denied"
    assert strerror(qerrno.ETIMEDOUT) == "Connection timed out"
    assert strerror(qerrno.EOK) == "No error"


def test_strerror_has_a_message_for_every_code() -> None:
    for value in errorcode:
        message = strerror(value)
        assert message
        assert not message.startswith("Unknown error"), errorcode[value]


@pytest.mark.parametrize("n", [-1, 59, 96, 262, 303, 9999, 2**40])
def test_strerror_unknown(n: int) -> None:
    assert n not in errorcode
    assert strerror(n) == f"Unknown error {n}"


# --- QnxError ------------------------------------------------------------------------------


def test_qnxerror_str_matches_design() -> None:
    e = QnxError(22, "R-MMAP-2: len is 0", call="mmap", pid=2)
    assert str(e) == "EINVAL (22): mmap: R-MMAP-2: len is 0"


def test_qnxerror_str_without_call() -> None:
    e = QnxError(qerrno.ESRCH, "R-PEER-2: no process 99999")
    assert str(e) == "ESRCH (3): R-PEER-2: no process 99999"


def test_qnxerror_str_with_empty_reason_uses_strerror() -> None:
    assert str(QnxError(qerrno.ENOMEM, "", call="mmap")) == "ENOMEM (12): mmap: Not enough memory"


def test_qnxerror_is_an_oserror_with_attributes() -> None:
    e = QnxError(qerrno.EINVAL, "R-MMAP-2: len is 0", call="mmap", pid=2)
    assert isinstance(e, OSError)
    assert e.errno == 22
    assert e.strerror == "Invalid argument"
    assert e.reason == "R-MMAP-2: len is 0"
    assert e.call == "mmap"
    assert e.pid == 2
    assert e.name == "EINVAL"
    assert e.args == (22, "Invalid argument")


def test_qnxerror_defaults() -> None:
    e = QnxError(qerrno.EPERM, "R-ABLE-2: denied")
    assert e.call == ""
    assert e.pid is None
    assert e.name == "EPERM"


def test_qnxerror_unknown_number() -> None:
    e = QnxError(9999, "x")
    assert e.name == "EUNKNOWN"
    assert e.strerror == "Unknown error 9999"
    assert str(e) == "EUNKNOWN (9999): x"


def test_qnxerror_bool_errno_becomes_int() -> None:
    e = QnxError(True, "x")
    assert type(e.errno) is int
    assert e.errno == qerrno.EPERM


def test_qnxerror_is_raised_and_caught_as_oserror() -> None:
    with pytest.raises(OSError, match=r"R-PEER-2") as info:
        raise QnxError(qerrno.ESRCH, "R-PEER-2: no such pid", call="mmap_peer", pid=5)
    assert info.value.errno == qerrno.ESRCH


def test_qnxerror_pickle_round_trip() -> None:
    e = QnxError(qerrno.EACCES, "R-PEER-3: no permission", call="mmap_peer", pid=7)
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is QnxError
    assert (e2.errno, e2.strerror, e2.reason, e2.call, e2.pid, e2.name) == (
        e.errno,
        e.strerror,
        e.reason,
        e.call,
        e.pid,
        e.name,
    )
    assert e2.args == e.args
    assert str(e2) == str(e)


def test_qnxerror_pickle_keeps_extra_attributes() -> None:
    e = QnxError(qerrno.EINVAL, "r")
    e.add_note("a note")
    e2 = pickle.loads(pickle.dumps(e))
    assert e2.__notes__ == ["a note"]


def test_qnxerror_copy() -> None:
    e = QnxError(qerrno.EBADF, "R-MMAP-7: fd 9 is not open", call="mmap", pid=3)
    for dup in (copy.copy(e), copy.deepcopy(e)):
        assert dup is not e
        assert str(dup) == str(e)
        assert dup.pid == 3


def test_qnxerror_identity_semantics() -> None:
    a = QnxError(qerrno.EINVAL, "same")
    b = QnxError(qerrno.EINVAL, "same")
    assert a != b
    assert a == a
    assert len({a, b, a}) == 2


def test_qnxerror_repr() -> None:
    e = QnxError(22, "R-MMAP-2: len is 0", call="mmap", pid=2)
    assert repr(e) == "QnxError(22, 'R-MMAP-2: len is 0', call='mmap', pid=2)"


@given(st.integers())
def test_any_int_gives_a_message_and_an_error(n: int) -> None:
    message = strerror(n)
    assert isinstance(message, str)
    assert message
    e = QnxError(n, "x")
    assert e.errno == n
    assert e.strerror == message
    assert str(e).startswith(f"{e.name} ({n}): ")


# --- constants (SPEC 18) -------------------------------------------------------------------


def test_map_flags_match_spec() -> None:
    assert c.MAP_FILE == 0x0
    assert c.MAP_SHARED == 0x1
    assert c.MAP_PRIVATE == 0x2
    assert c.MAP_TYPE == 0x3
    assert c.MAP_FIXED == 0x10
    assert c.MAP_ELF == 0x20
    assert c.MAP_NOSYNCFILE == 0x0
    assert c.MAP_LAZY == 0x80
    assert c.MAP_STACK == 0x1000
    assert c.MAP_BELOW == 0x2000
    assert c.MAP_NOINIT == 0x4000
    assert c.MAP_PHYS == 0x10000
    assert c.MAP_NOINHERIT == 0x20000
    assert c.MAP_HANDLE == 0x40000
    assert c.MAP_ANON == c.MAP_ANONYMOUS == 0x80000
    assert c.MAP_SYSRAM == 0x1000000
    assert c.MAP_RESERVMASK == 0xFFF00000
    assert c.MAP_NORESERVE == 0x0
    assert c.MAP_RENAME == 0x0
    assert c.NOFD == -1
    assert c.MAP_FAILED == -1


def test_prot_msync_mlock_madvise_match_spec() -> None:
    assert (c.PROT_NONE, c.PROT_READ, c.PROT_WRITE, c.PROT_EXEC) == (0x0, 0x100, 0x200, 0x400)
    assert c.PROT_NOCACHE == 0x800
    assert c.PROT_MASK == 0xF00
    assert (c.MS_ASYNC, c.MS_SYNC, c.MS_INVALIDATE) == (0x1, 0x2, 0x4)
    assert c.MS_INVALIDATE_LOCKED == 0x100000
    assert c.MS_INVALIDATE_ICACHE == 0x1000000
    assert c.MS_CACHE_ONLY == 0x2000000
    assert c.MS_CLEAN_ONLY == 0x4000000
    assert c.MS_SYNC_FULL == 0x8000000
    assert (c.MCL_CURRENT, c.MCL_FUTURE) == (0x1, 0x2)
    assert c.POSIX_MADV_NORMAL == 0
    assert c.POSIX_MADV_SEQUENTIAL == 1
    assert c.POSIX_MADV_RANDOM == 2
    assert c.POSIX_MADV_WILLNEED == 3
    assert c.POSIX_MADV_DONTNEED == 4
    assert c.POSIX_MADV_DISCARD_NP == 5


def test_shmctl_match_spec() -> None:
    assert c.SHMCTL_ANON == 0x1
    assert c.SHMCTL_PHYS == 0x2
    assert c.SHMCTL_SEAL == 0x4
    assert c.SHMCTL_REVOCABLE == 0x8
    assert c.SHMCTL_GLOBAL == 0x10
    assert c.SHMCTL_PRIV == 0x20
    assert c.SHMCTL_LOWERPROT == 0x40
    assert c.SHMCTL_LAZYWRITE == 0x80
    assert c.SHMCTL_HIGHUSAGE == 0x200
    assert c.SHMCTL_LAZY == 0x400
    assert c.SHMCTL_REPEAT == 0x800
    assert c.SHMCTL_NODEFRAG == 0x1000
    assert c.SHMCTL_TYMEM == 0x2000
    assert c.SHMCTL_GET_FLAGS == 0x4000
    assert c.SHMCTL_HAS_SPECIAL == 0x8000
    assert c.SHMCTL_FLAG_MASK == 0xFFFF


def test_open_flags_match_spec() -> None:
    assert (c.O_RDONLY, c.O_WRONLY, c.O_RDWR, c.O_EXEC, c.O_ACCMODE) == (0, 1, 2, 3, 0o7)
    assert c.O_APPEND == 0o10
    assert c.O_DSYNC == 0o20
    assert c.O_SYNC == 0o40
    assert c.O_RSYNC == 0o100
    assert c.O_NONBLOCK == 0o200
    assert c.O_CREAT == 0o400
    assert c.O_TRUNC == 0o1000
    assert c.O_EXCL == 0o2000
    assert c.O_NOCTTY == 0o4000
    assert c.O_NOFOLLOW == 0o10000
    assert c.O_CLOEXEC == 0o20000
    assert c.O_REALIDS == 0o40000
    assert c.O_LARGEFILE == 0o100000
    assert c.O_ASYNC == 0o200000
    assert c.O_ANON == 0o1000000
    assert (c.SEEK_SET, c.SEEK_CUR, c.SEEK_END) == (0, 1, 2)


def test_signals_match_spec() -> None:
    assert (c.SIGBUS, c.SIGSEGV) == (10, 11)
    assert (c.SEGV_MAPERR, c.SEGV_ACCERR) == (1, 2)
    assert (c.BUS_ADRALN, c.BUS_ADRERR, c.BUS_OBJERR) == (1, 2, 3)


def test_procmgr_match_spec() -> None:
    # R-ABLE-3
    assert c.PROCMGR_AID_MEM_ADD == 15
    assert c.PROCMGR_AID_MEM_PHYS == 16
    assert c.PROCMGR_AID_MEM_SPECIAL == 17
    assert c.PROCMGR_AID_MEM_GLOBAL == 18
    assert c.PROCMGR_AID_MEM_PEER == 19
    assert c.PROCMGR_AID_MEM_LOCK == 20
    assert c.PROCMGR_AID_PROT_EXEC == 23
    assert c.PROCMGR_AID_MAP_FIXED == 39
    assert c.PROCMGR_AID_PROT_WRITE_AND_EXEC == 53
    assert c.PROCMGR_AID_XPROCESS_ABLE == 62
    assert c.PROCMGR_AID_EOL == 0xFFFF
    assert c.PROCMGR_AOP_DENY == 0x10000
    assert c.PROCMGR_AOP_ALLOW == 0x20000
    assert c.PROCMGR_AOP_SUBRANGE == 0x40000
    assert c.PROCMGR_AOP_LOCK == 0x80000
    assert c.PROCMGR_AOP_INHERIT_YES == 0x400000
    assert c.PROCMGR_AOP_INHERIT_NO == 0x800000
    assert c.PROCMGR_ADN_ROOT == 0x10000000
    assert c.PROCMGR_ADN_NONROOT == 0x20000000


def test_procmgr_ability_ids_are_unique_and_fit_the_id_field() -> None:
    ids = {
        name: value
        for name, value in vars(c).items()
        if name.startswith("PROCMGR_AID_") and name not in ("PROCMGR_AID_EOL", "PROCMGR_AID_MASK")
    }
    assert len(set(ids.values())) == len(ids)
    assert all(0 <= v < c.PROCMGR_AID_EOL for v in ids.values())
    ops = (
        c.PROCMGR_AOP_DENY
        | c.PROCMGR_AOP_ALLOW
        | c.PROCMGR_AOP_SUBRANGE
        | c.PROCMGR_AOP_LOCK
        | c.PROCMGR_AOP_INHERIT_YES
        | c.PROCMGR_AOP_INHERIT_NO
        | c.PROCMGR_ADN_ROOT
        | c.PROCMGR_ADN_NONROOT
    )
    assert ops & c.PROCMGR_AID_EOL == 0


def test_limits_match_spec() -> None:
    assert (c.RLIMIT_CPU, c.RLIMIT_FSIZE, c.RLIMIT_DATA, c.RLIMIT_STACK) == (0, 1, 2, 3)
    assert (c.RLIMIT_CORE, c.RLIMIT_NOFILE) == (4, 5)
    assert c.RLIMIT_AS == c.RLIMIT_VMEM == c.RLIMIT_RSS == 6
    assert (c.RLIMIT_MEMLOCK, c.RLIMIT_NPROC) == (7, 8)
    assert c.RLIM_INFINITY == 2**64 - 3 == 0xFFFF_FFFF_FFFF_FFFD
    assert c.RLIM_INFINITY_32 == 0x7FFFFFFF
    assert c.NAME_MAX == 255


def test_shm_anon_is_a_unique_sentinel() -> None:
    assert repr(c.SHM_ANON) == "SHM_ANON"
    assert not isinstance(c.SHM_ANON, str)
    assert pickle.loads(pickle.dumps(c.SHM_ANON)) is c.SHM_ANON
    assert copy.deepcopy(c.SHM_ANON) is c.SHM_ANON
    assert type(c.SHM_ANON)() is c.SHM_ANON
    assert c.SHM_ANON != "SHM_ANON"


# --- flag tables and flag_names ------------------------------------------------------------


def test_flag_tables_hold_single_bits_named_like_the_constants() -> None:
    for table in (MAP_FLAG_NAMES, PROT_NAMES):
        for value, name in table.items():
            assert value != 0
            assert value & (value - 1) == 0, name
            assert getattr(c, name) == value
    assert set(PROT_NAMES.values()) == {"PROT_READ", "PROT_WRITE", "PROT_EXEC", "PROT_NOCACHE"}
    assert "MAP_ANON" in MAP_FLAG_NAMES.values()
    assert "MAP_ANONYMOUS" not in MAP_FLAG_NAMES.values()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0"),
        (c.MAP_PRIVATE | c.MAP_ANON, "MAP_PRIVATE|MAP_ANON"),
        (c.MAP_SHARED, "MAP_SHARED"),
        (c.MAP_SHARED | c.MAP_FIXED | c.MAP_LAZY, "MAP_SHARED|MAP_FIXED|MAP_LAZY"),
        (c.MAP_PRIVATE | c.MAP_ANON | c.MAP_PHYS, "MAP_PRIVATE|MAP_PHYS|MAP_ANON"),
        (c.MAP_ELF, "MAP_ELF"),
        (c.MAP_TYPE, "0x3"),
        (c.MAP_TYPE | c.MAP_FIXED, "0x3|MAP_FIXED"),
        (c.MAP_PRIVATE | 0x40, "MAP_PRIVATE|0x40"),
        (c.MAP_SHARED | 0x100 | 0x200, "MAP_SHARED|0x300"),
        (c.MAP_PRIVATE | 0x80000000, "MAP_PRIVATE|0x80000000"),
    ],
)
def test_flag_names_map(value: int, expected: str) -> None:
    assert flag_names(value, MAP_FLAG_NAMES) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (c.PROT_NONE, "0"),
        (c.PROT_READ, "PROT_READ"),
        (c.PROT_READ | c.PROT_WRITE, "PROT_READ|PROT_WRITE"),
        (c.PROT_READ | c.PROT_EXEC, "PROT_READ|PROT_EXEC"),
        (c.PROT_READ | c.PROT_WRITE | c.PROT_NOCACHE, "PROT_READ|PROT_WRITE|PROT_NOCACHE"),
        (0x1, "0x1"),
        (c.PROT_WRITE | 0x3, "PROT_WRITE|0x3"),
    ],
)
def test_flag_names_prot(value: int, expected: str) -> None:
    assert flag_names(value, PROT_NAMES) == expected


def test_flag_names_negative_is_read_as_32_bit_int() -> None:
    assert flag_names(-1, PROT_NAMES) == flag_names(0xFFFFFFFF, PROT_NAMES)
    assert flag_names(-1, PROT_NAMES).startswith("PROT_READ|PROT_WRITE|PROT_EXEC|PROT_NOCACHE|")


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_flag_names_accounts_for_every_bit(value: int) -> None:
    rendered = flag_names(value, MAP_FLAG_NAMES)
    total = 0
    for part in rendered.split("|"):
        total |= int(part, 16) if part.startswith("0") else getattr(c, part)
    assert total == value
