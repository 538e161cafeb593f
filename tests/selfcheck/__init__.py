"""The suite's self-check: faulty servers it must catch, correct variants it must pass.

Each fault is the reference server with one realistic bug (a replaced part passed to create_app,
a subclass, or an ASGI middleware); each variant is the reference server changed in a way the
contract allows. tests/test_selfcheck.py runs the suite against all of them; scripts/
mutation_score.py and scripts/flake_check.py use the same catalog.
"""
