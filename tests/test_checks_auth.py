"""The auth checks' near-miss probing: passes the reference server, catches each loose token comparison."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from support.check_runs import assert_caught, assert_passed, run_named_check
from support.servers import serve

from conformance.near_misses import malformed_credentials, near_tokens
from conformance.session import Session

CHECK = "near_miss_tokens_get_401"
TOKEN68 = r"^[A-Za-z0-9\-._~+/]+=*$"  # RFC 9110 §11.2 token68: what a well-formed bearer token is


def test_near_miss_tokens_pass_the_reference_server(reference_url: str, make_session: Callable[..., Session]) -> None:
    assert_passed(run_named_check(CHECK, make_session(reference_url)))


@pytest.mark.parametrize(
    "fault", ["auth-token-case-insensitive", "auth-token-prefix-accepted", "auth-token-cut-at-whitespace"]
)
def test_near_miss_tokens_catch_a_loose_comparison(fault: str, make_session: Callable[..., Session]) -> None:
    with serve(fault) as url:
        run = run_named_check(CHECK, make_session(url))
    assert_caught(run, {"AUTH-002"})


def test_near_tokens_are_other_well_formed_tokens() -> None:
    token = "rc-test-token-primary"
    near = near_tokens(token)
    assert set(near) >= {"the token in other case", "the token's prefix (its last character dropped)"}
    assert all(value != token and re.fullmatch(TOKEN68, value) for value in near.values()), near


def test_malformed_credentials_all_carry_the_token_and_none_is_it() -> None:
    token = "rc-test-token-primary"
    for label, value in malformed_credentials(token).items():
        assert value != f"Bearer {token}".encode(), label
        # Not the scheme, one or more spaces and the token: what HTTP would make equal to ours.
        assert not re.fullmatch(rb"Bearer +" + re.escape(token.encode()), value), label


SCHEME_CHECK = "bearer_scheme_in_any_case_accepted"


def test_the_scheme_in_any_case_passes_the_reference_server(
    reference_url: str, make_session: Callable[..., Session]
) -> None:
    run = run_named_check(SCHEME_CHECK, make_session(reference_url))
    assert_passed(run)
    assert run.outcomes["AUTH-006"].evaluations == 15  # five operations, three other cases of the scheme


def test_a_case_sensitive_scheme_is_caught(make_session: Callable[..., Session]) -> None:
    with serve("auth-scheme-case-sensitive") as url:
        run = run_named_check(SCHEME_CHECK, make_session(url))
    assert_caught(run, {"AUTH-006"})


@pytest.mark.parametrize("fault", ["auth-token-case-insensitive", "auth-token-prefix-accepted"])
def test_a_loose_token_is_not_mistaken_for_a_loose_scheme(fault: str, make_session: Callable[..., Session]) -> None:
    # Faults in the token's comparison accept the scheme in any case, as they should: AUTH-006 passes them,
    # and AUTH-002 catches them (above). The scheme's case and the token's are judged apart.
    with serve(fault) as url:
        assert_passed(run_named_check(SCHEME_CHECK, make_session(url)))
