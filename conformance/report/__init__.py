"""The report writers: everything that reads the results model (conformance.results.RunReport).

`write_reports` writes a run's three files into one folder:
- conformance.json: the model itself, for tools and for `runs-conformance diff`;
- conformance.html: one self-contained page for people;
- junit.xml: one testcase per requirement, for CI test views.

Besides them, summary.py writes the Markdown summary a CI job shows (--summary, $GITHUB_STEP_SUMMARY),
and markdown.py holds what it shares with `runs-conformance diff --format markdown`.

Each writer works on a scrubbed copy of the report: credentials are masked once more, whatever
the recorder let through.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from conformance.report._common import scrub
from conformance.report.html import render_html, write_html
from conformance.report.junit import render_junit, write_junit
from conformance.results import RunReport

__all__ = ["HTML_NAME", "JSON_NAME", "JUNIT_NAME", "render_html", "render_junit", "scrub", "write_reports"]

JSON_NAME = "conformance.json"
HTML_NAME = "conformance.html"
JUNIT_NAME = "junit.xml"


def write_reports(report: RunReport, directory: Path, *, secrets: Iterable[str] = ()) -> list[Path]:
    """Write conformance.json, conformance.html and junit.xml into `directory`; return their paths.

    `secrets` (the tokens of the run) are replaced wherever they would appear.
    """
    clean = scrub(report, secrets)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / JSON_NAME
    clean.write(json_path)
    return [json_path, write_html(clean, directory / HTML_NAME), write_junit(clean, directory / JUNIT_NAME)]
