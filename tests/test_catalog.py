"""The requirement catalog (conformance/requirements.yaml) is well-formed and changes only on purpose.

Reports, CI gates and users' waivers refer to requirement IDs, so an ID keeps its meaning forever:
tests/snapshots/requirements.txt pins every `id<TAB>level<TAB>statement`, any difference fails
until the snapshot is regenerated deliberately, and an ID that disappears fails even then.
docs/requirements.md, generated from the catalog (each rule with its `instance` line), fails the same
way while it is out of date; the same command regenerates both.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.tooling import UPDATE_ENV, keep_generated

from conformance.catalog import MAX_INSTANCE_CHARS, _parse, catalog
from conformance.report.requirements_doc import DOC, render

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "conformance" / "requirements.yaml"
SNAPSHOT = ROOT / "tests" / "snapshots" / "requirements.txt"
UPDATE_COMMAND = f"{UPDATE_ENV}=1 pytest tests/test_catalog.py"

# The areas are fixed: each has its ID prefix, and reports group by them.
AREA_PREFIXES = {
    "schema": "SCHEMA",
    "errors": "ERR",
    "auth": "AUTH",
    "idempotency": "IDEM",
    "etag": "ETAG",
    "cancel": "CANCEL",
    "lifecycle": "LIFE",
    "pagination": "PAGE",
    "concurrency": "CONC",
}
LEVELS = ("MUST", "SHOULD", "MAY")
ENTRY_KEYS = {"id", "level", "area", "statement", "instance", "operations", "citation"}
ID_FORM = re.compile(r"^(?P<prefix>[A-Z]+)-(?P<number>\d{3})$")
# A sentence ends at . ! or ? followed by a space; these abbreviations do not end one.
SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)[.!?]\s")


def load_catalog(path: Path = CATALOG) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return load_catalog()


# --- the checks, as functions of the catalog ------------------------------------------------------


def entry_problems(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Everything wrong with the entries' form; [] when all are well-formed."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        req_id = str(entry.get("id", f"entry #{index + 1}"))
        if set(entry) != ENTRY_KEYS:
            problems.append(f"{req_id}: keys are {sorted(entry)}, expected {sorted(ENTRY_KEYS)}")
        if req_id in seen:
            problems.append(f"{req_id}: the ID appears twice")
        seen.add(req_id)
        form = ID_FORM.match(req_id)
        area = entry.get("area")
        if area not in AREA_PREFIXES:
            problems.append(f"{req_id}: area {area!r} is not one of {sorted(AREA_PREFIXES)}")
        if form is None:
            problems.append(f"{req_id}: an ID has the form AREA-NNN (e.g. IDEM-001)")
        elif area in AREA_PREFIXES and form["prefix"] != AREA_PREFIXES[area]:
            problems.append(f"{req_id}: area {area} takes IDs {AREA_PREFIXES[area]}-NNN")
        if entry.get("level") not in LEVELS:
            problems.append(f"{req_id}: level {entry.get('level')!r} is not one of {', '.join(LEVELS)}")
        statement = entry.get("statement")
        if not isinstance(statement, str) or not statement.strip():
            problems.append(f"{req_id}: no statement")
        else:
            # The snapshot is one tab-separated line per ID, and reports print statements inline.
            if any(char in statement for char in "\t\n\r") or statement != statement.strip():
                problems.append(f"{req_id}: the statement must be one line without tabs or edge spaces")
            if not statement.endswith(".") or statement.endswith(".."):
                problems.append(f"{req_id}: the statement must end with a period")
            if SENTENCE_END.search(statement):
                problems.append(f"{req_id}: the statement must be one sentence")
        instance = entry.get("instance")
        if not isinstance(instance, str) or not instance.strip():
            problems.append(f"{req_id}: no instance (one line: what one evaluation of it is)")
        elif any(char in instance for char in "\t\n\r") or len(instance) > MAX_INSTANCE_CHARS:
            problems.append(f"{req_id}: the instance must be one line of at most {MAX_INSTANCE_CHARS} characters")
        operations = entry.get("operations")
        if not (isinstance(operations, list) and operations and all(isinstance(op, str) for op in operations)):
            problems.append(f"{req_id}: operations must be a non-empty list of operationIds")
        citation = entry.get("citation")
        if not (isinstance(citation, Mapping) and isinstance(citation.get("spec"), str) and citation["spec"]):
            problems.append(f"{req_id}: no citation.spec (a location in openapi/runs.yaml)")
        elif set(citation) - {"spec", "rfc"} or ("rfc" in citation and not str(citation["rfc"] or "").strip()):
            problems.append(f"{req_id}: a citation has `spec` and an optional non-empty `rfc`, got {dict(citation)}")
    return problems


def snapshot_text(entries: Sequence[Mapping[str, Any]]) -> str:
    return "".join(f"{entry['id']}\t{entry['level']}\t{entry['statement']}\n" for entry in entries)


def snapshot_ids(text: str) -> list[str]:
    return [line.split("\t", 1)[0] for line in text.splitlines() if line.strip()]


def removal_message(snapshot: str, current: str) -> str | None:
    """Why the catalog may not lose the IDs it lost, or None when it lost none."""
    remaining = set(snapshot_ids(current))
    removed = [req_id for req_id in snapshot_ids(snapshot) if req_id not in remaining]
    if not removed:
        return None
    return (
        f"requirement IDs removed from {CATALOG.relative_to(ROOT)}: {', '.join(removed)}. "
        "IDs are never reused or removed, because reports, CI gates and waivers refer to them: "
        "put the entry back and deprecate it instead (keep the ID and say so in its statement), "
        "and give a new rule a new ID."
    )


def difference_message(snapshot: str, current: str) -> str | None:
    """A diff and how to accept it on purpose, or None when the snapshot is current."""
    if snapshot == current:
        return None
    diff = difflib.unified_diff(snapshot.splitlines(), current.splitlines(), "snapshot", "catalog", lineterm="", n=0)
    return (
        f"{CATALOG.relative_to(ROOT)} differs from {SNAPSHOT.relative_to(ROOT)}:\n"
        + "\n".join(diff)
        + "\nIf the change is deliberate (a new ID, a reworded statement, a changed level), regenerate "
        f"the snapshot with `{UPDATE_COMMAND}` and commit it with the catalog."
    )


# --- the real catalog -----------------------------------------------------------------------------


def test_entries_are_well_formed(data: dict[str, Any]) -> None:
    problems = entry_problems(data["requirements"])
    assert problems == [], "\n".join(problems)


def test_areas_are_the_fixed_list(data: dict[str, Any]) -> None:
    assert sorted(data["areas"]) == sorted(AREA_PREFIXES)


def test_typed_loader_reads_every_entry(data: dict[str, Any]) -> None:
    # The suite reads the catalog through conformance.catalog; it must see the same IDs in order.
    from conformance.catalog import catalog

    assert list(catalog()) == [entry["id"] for entry in data["requirements"]]


def test_snapshot_pins_every_id_level_and_statement(data: dict[str, Any]) -> None:
    current = snapshot_text(data["requirements"])
    snapshot = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.is_file() else ""
    # Checked before any update: regenerating the snapshot must not make a removal pass.
    removed = removal_message(snapshot, current)
    if removed:
        pytest.fail(removed, pytrace=False)
    if os.environ.get(UPDATE_ENV) == "1":
        if snapshot != current:
            SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
            SNAPSHOT.write_text(current, encoding="utf-8")
        return
    if not SNAPSHOT.is_file():
        pytest.fail(f"{SNAPSHOT.relative_to(ROOT)} is missing: create it with `{UPDATE_COMMAND}`")
    different = difference_message(snapshot, current)
    if different:
        pytest.fail(different, pytrace=False)


# --- each check fails on a broken catalog -------------------------------------------------------


GOOD: dict[str, Any] = {
    "id": "IDEM-001",
    "level": "MUST",
    "area": "idempotency",
    "statement": "A retried startRun (same key, e.g. after a timeout) gets the same runId.",
    "instance": "one retry of a startRun with a used key and the same body, judged on its runId",
    "operations": ["startRun"],
    "citation": {"spec": "components.parameters.IdempotencyKey", "rfc": "RFC 9110"},
}


def test_a_good_entry_passes() -> None:
    assert entry_problems([GOOD]) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"id": "IDEM-1"}, "IDEM-1: an ID has the form AREA-NNN (e.g. IDEM-001)"),
        ({"id": "idem-001"}, "idem-001: an ID has the form AREA-NNN (e.g. IDEM-001)"),
        ({"id": "PAGE-001"}, "PAGE-001: area idempotency takes IDs IDEM-NNN"),
        ({"level": "must"}, "IDEM-001: level 'must' is not one of MUST, SHOULD, MAY"),
        ({"level": "SHALL"}, "IDEM-001: level 'SHALL' is not one of MUST, SHOULD, MAY"),
        ({"area": "retries"}, "IDEM-001: area 'retries' is not one of"),
        ({"statement": "A retried startRun gets the same runId"}, "IDEM-001: the statement must end with a period"),
        ({"statement": "It gets 202. It gets the same runId."}, "IDEM-001: the statement must be one sentence"),
        ({"statement": "It gets 202. startRun is idempotent."}, "IDEM-001: the statement must be one sentence"),
        ({"statement": "It gets 202!  Always."}, "IDEM-001: the statement must be one sentence"),
        ({"statement": "It gets\n202."}, "IDEM-001: the statement must be one line"),
        ({"statement": ""}, "IDEM-001: no statement"),
        ({"operations": []}, "IDEM-001: operations must be a non-empty list"),
        ({"citation": {"rfc": "RFC 9110"}}, "IDEM-001: no citation.spec"),
        ({"citation": None}, "IDEM-001: no citation.spec"),
        ({"citation": {"spec": "paths", "section": "x"}}, "IDEM-001: a citation has `spec` and an optional"),
        ({"note": "x"}, "IDEM-001: keys are"),
        ({"instance": ""}, "IDEM-001: no instance"),
        ({"instance": "two retries,\nthe same body"}, "IDEM-001: the instance must be one line"),
        ({"instance": "x" * (MAX_INSTANCE_CHARS + 1)}, "IDEM-001: the instance must be one line"),
    ],
)
def test_a_bad_entry_is_named(change: dict[str, Any], problem: str) -> None:
    problems = entry_problems([{**GOOD, **change}])
    assert any(found.startswith(problem) for found in problems), problems


def test_a_missing_citation_is_named() -> None:
    entry = {key: value for key, value in GOOD.items() if key != "citation"}
    assert "IDEM-001: no citation.spec (a location in openapi/runs.yaml)" in entry_problems([entry])


def test_a_duplicate_id_is_named() -> None:
    assert entry_problems([GOOD, GOOD]) == ["IDEM-001: the ID appears twice"]


def test_a_removed_id_is_refused_with_its_own_message() -> None:
    two = snapshot_text([GOOD, {**GOOD, "id": "IDEM-002"}])
    one = snapshot_text([GOOD])
    message = removal_message(two, one)
    assert message is not None
    assert message.startswith("requirement IDs removed from conformance/requirements.yaml: IDEM-002. ")
    assert "IDs are never reused or removed" in message and "deprecate it instead" in message
    assert removal_message(one, two) is None


def test_a_changed_statement_shows_the_diff_and_how_to_update() -> None:
    before = snapshot_text([GOOD])
    after = snapshot_text([{**GOOD, "level": "SHOULD"}])
    message = difference_message(before, after)
    assert message is not None
    assert "-IDEM-001\tMUST\t" in message and "+IDEM-001\tSHOULD\t" in message
    assert f"`{UPDATE_COMMAND}`" in message
    assert difference_message(before, before) is None


def test_snapshot_lines_are_id_level_statement() -> None:
    assert snapshot_text([GOOD]) == f"IDEM-001\tMUST\t{GOOD['statement']}\n"


@pytest.mark.parametrize(("instance", "problem"), [(None, "no `instance` line"), ("a\nb", "must be one line")])
def test_the_typed_loader_refuses_an_entry_without_one_instance_line(instance: str | None, problem: str) -> None:
    # The suite itself (not only this test) refuses such a catalog: conformance.json and the docs carry the line.
    entry = {k: v for k, v in GOOD.items() if k != "instance"}
    if instance is not None:
        entry["instance"] = instance
    with pytest.raises(ValueError, match=problem):
        _parse(entry, set(AREA_PREFIXES))


def test_the_requirements_doc_is_generated_from_the_catalog() -> None:
    keep_generated(DOC, render(), "catalog", "tests/test_catalog.py")


def test_the_doc_shows_each_instance_line_on_its_row() -> None:
    text = render()
    page = next(line for line in text.splitlines() if line.startswith("| PAGE-001 |"))
    assert page.endswith(f"| {catalog()['PAGE-001'].instance} |")
    assert "two runs of one clientId with different createdAt" in page
    assert render([_parse({**GOOD, "instance": "a | b"}, set(AREA_PREFIXES))]).count("a \\| b") == 1
