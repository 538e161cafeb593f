"""The tests' bearer tokens: the reference server, every fault and every variant are built for these two."""

from __future__ import annotations

TOKEN = "rc-test-token-primary"
OTHER_TOKEN = "rc-test-token-secondary"
TOKENS = (TOKEN, OTHER_TOKEN)
