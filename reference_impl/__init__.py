"""The reference server of the Runs API: small, correct and durable.

`reference_impl.app.create_app` builds the ASGI app, `reference_impl.serve.serve_in_thread` runs it
on a loopback port, and `reference_impl.cli:main` is the `runs-reference-server` console script.
See docs/reference-server.md for the decisions this server takes where the contract is silent.
"""
