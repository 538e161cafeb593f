"""runs-conformance: the conformance suite for the Runs API."""

__version__ = "0.1.0"
