"""Every use of a third-party private API, fenced: one module per library.

These names move between minor versions. Each module says what it reaches into and why no public
API does it; tests/test_compat.py smoke-tests them against the pinned versions (pyproject.toml) and
fails loudly when an upgrade moves one.
"""
