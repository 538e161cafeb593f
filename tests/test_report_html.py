"""The HTML report: escaped, self-contained, complete, and working in a real browser."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from support.tooling import _missing, require_command

from conformance.baseline import apply_baseline
from conformance.catalog import requirement
from conformance.report import HTML_NAME, JSON_NAME, JUNIT_NAME, render_html, write_reports
from conformance.report._demo import DEMO_STATUSES, demo_report
from conformance.results import BaselineNote, Exchange, RunReport, Status

TOKEN = "tok-SECRET-abc123"
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def hostile_report() -> RunReport:
    """The demo run, plus evidence a hostile server could produce, and a token a buggy recorder let through."""
    report = demo_report()
    apply_baseline(report, None, strict=False, today=dt.date(2026, 3, 1))
    err = next(r for r in report.requirements if r.id == "ERR-001")
    err.message = f"answered {HOSTILE}"
    err.evidence[0].exchanges.append(
        Exchange(
            method="POST",
            url="http://127.0.0.1:8080/api/v1/runs?x=</pre><script>alert(2)</script>",
            request_headers={"Authorization": f"Bearer {TOKEN}", "X-Evil": '"><svg onload=alert(3)>'},
            request_body='{"a": "</textarea><script>alert(4)</script>"}',
            status=500,
            response_headers={"Content-Type": "text/html", "Set-Cookie": f"session={TOKEN}"},
            response_body=f"{HOSTILE} echo {TOKEN}",
            elapsed_ms=3.0,
            curl=f"curl -i -X POST -H 'Authorization: Bearer {TOKEN}' 'http://127.0.0.1:8080/api/v1/runs'",
        )
    )
    report.baseline = [BaselineNote("IDEM-001", "r", "2026-01-01", "expired", "javascript:alert(5)", "expired")]
    return report


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report")
    write_reports(hostile_report(), directory, secrets=[TOKEN])
    return directory


@pytest.fixture(scope="module")
def html(written: Path) -> str:
    return (written / HTML_NAME).read_text(encoding="utf-8")


def test_write_reports_writes_three_files(tmp_path: Path) -> None:
    paths = write_reports(demo_report(), tmp_path / "new" / "dir")
    assert [p.name for p in paths] == [JSON_NAME, HTML_NAME, JUNIT_NAME]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert RunReport.read(paths[0]).requirements[0].id == "SCHEMA-001"


def test_the_template_ships_inside_the_package() -> None:
    templates = resources.files("conformance.report") / "templates"
    for name in ("report.html.j2", "report.css", "report.js"):
        assert (templates / name).is_file(), name


def test_hostile_evidence_is_escaped(html: str) -> None:
    assert [t for t, _ in tags(html) if t in {"script", "img", "svg", "textarea", "iframe"}] == ["script"]
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert not any(k.startswith("on") for _, attrs in tags(html) for k in attrs)
    assert "javascript:" not in " ".join(str(a.get("href")) for _, a in tags(html))


def test_the_token_appears_nowhere(written: Path) -> None:
    for path in written.iterdir():
        assert TOKEN not in path.read_text(encoding="utf-8"), path.name


def test_nothing_is_fetched_from_anywhere(html: str) -> None:
    for tag, attrs in tags(html):
        assert "src" not in attrs, tag
        assert tag not in {"link", "img", "iframe", "object", "embed", "base"}, tag
        href = attrs.get("href")
        if href is not None:
            assert href.startswith(("#", "https://www.rfc-editor.org/rfc/rfc")), href
    assert "@import" not in html and "url(" not in html
    [csp] = [a["content"] for t, a in tags(html) if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp is not None and csp.startswith("default-src 'none'") and "unsafe-inline" not in csp


def test_the_header_says_what_was_tested(html: str) -> None:
    report = demo_report()
    head = html.split('id="summary"')[0]
    for fact in (
        "Not conformant",
        report.base_url,
        report.suite_version,
        report.spec_version,
        report.spec_sha256,
        str(report.seed),
        report.command,
        "1 min 23 s",
    ):
        assert fact in head, fact


def test_every_requirement_has_a_row(html: str) -> None:
    rows = {a["id"]: a for t, a in tags(html) if t == "tr" and (a.get("id") or "").startswith("req-")}
    report = demo_report()
    assert list(rows) == [f"req-{r.id}" for r in report.requirements]
    for req in report.requirements:
        assert rows[f"req-{req.id}"]["data-status"] == req.status.value
        assert rows[f"req-{req.id}"]["data-area"] == req.area


def test_failures_carry_their_evidence_open(html: str) -> None:
    details = {a["id"]: a for t, a in tags(html) if t == "details" and (a.get("id") or "").startswith("detail-")}
    expected = {f"detail-{i}" for i, s in DEMO_STATUSES.items() if s in {Status.FAILED, Status.ERROR, Status.WARNING}}
    assert set(details) == expected
    for req_id, s in DEMO_STATUSES.items():
        if s in {Status.FAILED, Status.ERROR}:
            assert "open" in details[f"detail-{req_id}"], req_id
    assert "open" not in details["detail-SCHEMA-006"]  # a warning folds
    section = html.split('id="detail-ERR-001"')[1].split('<details class="detail ')[0].replace("<wbr>", "")
    assert "runs-conformance run --base-url http://127.0.0.1:8080 --seed 4242 --select ERR-001" in section
    assert "curl -i -X POST -H &#34;Authorization: Bearer $RUNS_TOKEN&#34;" in section
    assert "Falsifying example" in section and "1e309" in section
    assert "- id: ERR-001" in section  # the baseline entry, ready to paste
    assert requirement("ERR-001").spec_ref in section  # the citation


def test_rfc_citations_link_to_their_section(html: str) -> None:
    assert 'href="https://www.rfc-editor.org/rfc/rfc9110#section-10.2.2"' in html


def test_counts_by_area_and_level(html: str) -> None:
    table = html.split('id="counts-by-area"')[1].split("</table>")[0]
    assert re.search(r"<th>pagination</th>\s*<td class=\"n\"><a [^>]*>1</a>", table)
    assert 'id="counts-by-level"' in html


def test_baseline_notes_are_listed(html: str) -> None:
    section = html.split('id="baseline"')[1].split("</section>")[0]
    assert "IDEM-001" in section and "expired (stale)" in section
    assert "javascript:alert(5)" in section and "href=" not in section


def test_a_passing_run_says_so() -> None:
    report = demo_report()
    for req in report.requirements:
        req.status, req.evidence, req.message = Status.PASSED, [], ""
    apply_baseline(report, None, strict=False)
    page = render_html(report)
    assert "Conformant" in page.split('id="run"')[0]
    assert "Nothing failed, warned or errored in this run." in page


# --- in a real browser ------------------------------------------------------------------------
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    chromium = require_command("chromium")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def visible_rows(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "table.reqs tbody tr", "rows => rows.filter(r => r.offsetParent !== null).map(r => r.id.slice(4))"
    )
    return ids


@pytest.mark.slow
def test_filters_work_in_a_browser(browser: Any, written: Path, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    fetched: list[str] = []

    def block(route: Any) -> None:
        fetched.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!file:).*"), block)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in {"error", "warning"} else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto((written / HTML_NAME).as_uri())

    total = len(demo_report().requirements)
    assert len(visible_rows(page)) == total
    assert page.locator("#shown").inner_text() == f"{total} of {total} requirements shown"

    # Status: only failed.
    for box in page.locator("#filters input[name=status]").all():
        if box.get_attribute("value") != "failed":
            box.uncheck()
    failed = [i for i, s in DEMO_STATUSES.items() if s is Status.FAILED]
    assert sorted(visible_rows(page)) == sorted(failed)
    assert page.locator("#detail-ERR-001").is_visible()
    assert not page.locator("#detail-ETAG-004").is_visible()

    # Area: pagination, on top of the status.
    page.select_option("#filters select[name=area]", "pagination")
    assert visible_rows(page) == ["PAGE-006"]
    assert not page.locator("#detail-ERR-001").is_visible()
    page.screenshot(path=str(tmp_path / "filtered.png"), full_page=True)

    # Nothing matches: say so; then show everything again.
    page.locator("#filters input[value=failed]").uncheck()
    assert visible_rows(page) == [] and page.locator("#no-rows").is_visible()
    page.click("#show-all")
    assert len(visible_rows(page)) == total

    # Problems only, and a click on a count in the summary.
    page.click("#show-problems")
    problems_ids = [i for i, s in DEMO_STATUSES.items() if s in {Status.FAILED, Status.ERROR, Status.WARNING}]
    assert sorted(visible_rows(page)) == sorted(problems_ids)
    page.click('#counts-by-area a[data-only-status="skipped"][data-only-area="cancel"]')
    assert visible_rows(page) == ["CANCEL-004"]
    page.fill("#filters input[name=q]", "idem")
    assert visible_rows(page) == []
    page.click("#show-all")
    page.fill("#filters input[name=q]", "idem-002")
    assert visible_rows(page) == ["IDEM-002"]

    page.click("#show-all")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    assert fetched == [], f"the report fetched {fetched}"
    assert problems == [], f"console errors (a CSP violation?): {problems}"
    context.close()


def test_readable_with_script_disabled(browser: Any, written: Path) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto((written / HTML_NAME).as_uri())
    assert len(visible_rows(page)) == len(demo_report().requirements)
    assert not page.locator("#filters").is_visible()
    assert page.locator("#detail-ERR-001 pre.cmd").first.is_visible()
    context.close()


def test_print_shows_everything(browser: Any, written: Path) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto((written / HTML_NAME).as_uri())
    page.locator("#filters input[value=passed]").uncheck()
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert len(visible_rows(page)) == len(demo_report().requirements)
    assert page.locator("#detail-SCHEMA-006 pre").first.is_visible()  # folded on screen, open on paper
    assert not page.locator("#filters").is_visible()
    context.close()


def test_a_concurrency_finding_draws_its_timeline() -> None:
    from conformance.results import Evidence, TimelineEntry

    report = demo_report()
    row = next(r for r in report.requirements if r.status is Status.FAILED)
    entries = [
        TimelineEntry(0, 0, "getRun", 0.000, 0.004, 200, highlight=True),
        TimelineEntry(1, 1, "cancelRun", 0.002, 0.006, 202),
        TimelineEntry(2, 1, "getRun", 0.007, None, None, highlight=True),
    ]
    row.evidence.append(Evidence("concurrent_history", "run r1 moved back <queued>", [], None, entries))
    page = render_html(report)
    svg = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"') :]
    svg = svg[: svg.index("</svg>") + len("</svg>")]
    assert svg.count('class="lane"') == 2  # one lane per client
    assert svg.count('class="op evidence"') == 2 and 'data-op="1"' in svg
    assert "&lt;queued&gt;" in page and "<queued>" not in page
