"""Per-version differences of QNX, as data (SPEC section 19).

A ``Profile`` holds every point on which QNX versions differ; the rules read these fields
instead of testing version strings.  Only the 8.0 profile is simulated so far.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Profile:
    """What one QNX version does where versions differ (SPEC 19)."""

    version: str
    #: R-LOCK-3: 8.0's mlockall/munlockall do nothing and return 0.
    mlockall_noop: bool
    #: R-MADV-2: posix_madvise with len 0 is EINVAL (8.0) or succeeds.
    madvise_len0_einval: bool
    #: R-MSYNC-1: MS_SYNC_FULL is a valid msync flag (8.0 only).
    ms_sync_full: bool


PROFILES: dict[str, Profile] = {
    "8.0": Profile("8.0", mlockall_noop=True, madvise_len0_einval=True, ms_sync_full=True),
}
