"""What the tests of each check module (cancel, lifecycle, pagination) owe, as one base class."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import pytest

from conformance.session import Session

from .check_runs import assert_caught, assert_passed, run_named_check
from .faults_cancel_page import CORRECT_VARIANTS
from .servers import serve

__all__ = ["CheckModuleContract"]


class CheckModuleContract:
    """What the tests of each check module (cancel, lifecycle, pagination) owe, written once.

    A subclass named Test… sets the module's CHECKS and FAULT_CASES (fault, check, IDs it must fail);
    its module provides a `reference_session` fixture.
    """

    CHECKS: ClassVar[list[str]]
    FAULT_CASES: ClassVar[list[tuple[str, str, set[str]]]]
    FAULT_TIMEOUT: ClassVar[float] = 1.0  # --timeout against faulty servers: a stuck run fails fast

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "targets" in metafunc.fixturenames:
            ids = [f"{fault}-{name}" for fault, name, _ in self.FAULT_CASES]
            metafunc.parametrize(("fault", "name", "targets"), self.FAULT_CASES, ids=ids)
        elif "name" in metafunc.fixturenames:
            metafunc.parametrize("name", self.CHECKS)
        if "variant" in metafunc.fixturenames:
            metafunc.parametrize("variant", sorted(CORRECT_VARIANTS))

    def test_every_check_is_targeted_by_a_fault(self) -> None:
        assert {name for _fault, name, _ids in self.FAULT_CASES} == set(self.CHECKS)

    def test_check_passes_the_reference_server(self, name: str, reference_session: Session) -> None:
        assert_passed(run_named_check(name, reference_session))

    def test_check_fails_on_the_bug_it_targets(
        self, fault: str, name: str, targets: set[str], make_session: Callable[..., Session]
    ) -> None:
        with serve(fault) as url:
            run = run_named_check(name, make_session(url, timeout=self.FAULT_TIMEOUT))
        assert_caught(run, targets)

    def test_checks_pass_a_correct_variant(self, variant: str, make_session: Callable[..., Session]) -> None:
        with serve(variant) as url:
            session = make_session(url)
            for name in self.CHECKS:
                assert_passed(run_named_check(name, session))
