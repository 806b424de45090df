"""The CLI's memory policy for drive and live (cli/_common.keep_freed_memory): a large block freed and
allocated again is not faulted in page by page again."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
if sys.argv[1] == "keep":
    from reenact.cli._common import keep_freed_memory
    keep_freed_memory()
faults = []
for _ in range(40):  # the frames of a batch of 8 at 1000 x 1000, allocated, written and freed each time
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(8, 4, 1000, 1000)
    x.fill_(1.0)
    del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
print(max(faults[-10:]))
"""


def _faults(policy: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, policy], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_drive_s_memory_policy_reuses_freed_blocks():
    """128 MB allocated, filled and freed forty times: with glibc's own policy each time is a fresh
    mapping, 31250 page faults (4 KiB pages); kept, the heap is reused once its free blocks have
    coalesced, after 2-9 times (torch's 64-byte-aligned blocks do not fit the first freed ones;
    12 times were once not enough in CI), and the last ten take 0."""
    system, kept = _faults("system"), _faults("keep")
    print(f"page faults per 128 MB block, worst of the last ten of forty: system {system}, kept {kept}")
    assert system > 20000, "the premise: glibc maps a block this large afresh each time"
    assert kept < 1000
