"""Catalog areas whose checks have not landed yet, and why.

The tests that demand a check for every requirement (and a pass for every requirement from a
correct server) leave these areas out, and fail as soon as one of their requirements gets a
check, so that the exemption is removed with the check that ends it. No stub check fills the gap
meanwhile: a check that passes without looking would hide that nothing is verified, where "not
run" in a report says so.
"""

from __future__ import annotations

from conformance.catalog import catalog

AWAITING_CHECK: dict[str, str] = {
    "concurrency": (
        "conformance/history_checker.py checks a recorded concurrent history; the workload that records "
        "one against the server under test is still to come"
    ),
}


def pending_ids() -> set[str]:
    """The requirement IDs of the areas above."""
    return {req.id for req in catalog().values() if req.area in AWAITING_CHECK}
