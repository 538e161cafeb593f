"""Everything the tests share but pytest's fixtures: helpers, faulty servers and correct variants.

Tests import from here (`from support.servers import serve`); tests/conftest.py keeps only the
fixtures and the Hypothesis settings. What lives where:

- tokens.py: the two bearer tokens every test server is built for.
- check_runs.py: run one check of the suite (`run_named_check`, `open_session`) and the two verdicts
  on it, `assert_caught` and `assert_passed`.
- check_module_contract.py: the tests each check module's test file owes, as one base class.
- harness.py: run the suite's CLI in-process against a server and read its report (the self-check).
- servers.py: every fault and correct variant by name, `serve` to put one on a loopback port, and
  `isolation_matrix` (each requirement with the fault a run selecting it alone must catch).
  The servers themselves: faults.py and faults_concurrency.py (the self-check's faults),
  variants.py and variants_concurrency.py (its correct variants), faults_cancel_page.py and
  faults_idem_etag.py (the checks' unit-test servers), faults_schema.py (answers to invalid
  requests, a deadline mid-phase), faults_stall.py (stalled reads, coalesced keyless starts),
  faults_final.py (promises broken later: only the final reads catch them), faults_bounds.py
  (documented bounds), faults_nearmiss.py (near misses of the token, If-None-Match lists, keys),
  faults_disrupt.py (a server process that forgets across a restart: --disrupt; also the launcher
  of any correct variant as a process on a file), restarts.py (serve one with a command that
  restarts it, and whether a run's report proves the restart),
  planted_bugs.py (bugs the runner's tests plant), hostile_servers.py (servers that hang, reset
  or send garbage), with asgi.py (middleware that rewrites requests and responses) and
  replicas.py (stale copies of the store) to build them.
- reference_server.py: the reference server's own tests' helpers (serve it, a client, workflows, polling).
- history_model.py: histories of a simulated correct server, for the history checker.
- traffic.py: the suite's run against a server, recorded (`record`), and HAR made from that recording (`to_har`).
- seed_match.py: how the spec's text is matched against the seed's (tests/test_spec_fidelity.py).
- tooling.py: the repository root and the external tools (node, java) some tests need.
- markdown.py: Markdown parsed as GitHub and GitLab would (tables, headings, HTML), for the summary
  and diff tests.
- ci_steps.py: run the shell steps of action.yml and the GitLab component as each CI would
  (expression substitution, bash flags, an offline pip install of the checkout, the providers'
  published schemas as check-jsonschema ships them).
"""
