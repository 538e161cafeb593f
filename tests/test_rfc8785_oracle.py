"""The ETAG-003 check's oracle is itself checked: RFC 8785's own published examples.

`conformance.checks.etag.canonical_json` decides whether a server's definitionHash is right, so it
must produce exactly the bytes RFC 8785 shows (§3.2.2 sample, §3.2.3 sorting, Appendix B numbers).
"""

from __future__ import annotations

import hashlib
import json
import struct

import pytest

from conformance.checks.etag import canonical_json, expected_definition_hash

# RFC 8785 §3.2.2: the input (as JSON text, so the literals and escapes are the RFC's own) ...
SAMPLE_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
# ... and its canonical form, as printed in the RFC.
SAMPLE_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)

# RFC 8785 §3.2.3: property sorting by UTF-16 code units.
SORT_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
SORT_VALUES_IN_ORDER = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
]

# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialisation (a selection).
NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def test_the_section_3_2_2_sample() -> None:
    assert canonical_json(json.loads(SAMPLE_INPUT)).decode("utf-8") == SAMPLE_OUTPUT


def test_the_section_3_2_3_sorting_example() -> None:
    canonical = canonical_json(json.loads(SORT_INPUT))
    assert list(json.loads(canonical).values()) == SORT_VALUES_IN_ORDER
    assert canonical.startswith(b'{"\\r":"Carriage Return","1":"One","\xc2\x80":"Control"')


@pytest.mark.parametrize(("bits", "expected"), NUMBERS)
def test_appendix_b_numbers(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonical_json(value).decode() == expected


def test_no_whitespace_and_utf8_output() -> None:
    assert (
        canonical_json({"b": [1, {"z": "ü", "a": None}], "a": "\u2028"})
        == '{"a":"\u2028","b":[1,{"a":null,"z":"ü"}]}'.encode()
    )


def test_expected_definition_hash_is_sha256_of_the_canonical_form() -> None:
    workflow = {"steps": [{"action": "noop", "id": "a"}], "name": "w"}
    digest = hashlib.sha256(b'{"name":"w","steps":[{"action":"noop","id":"a"}]}').hexdigest()
    assert expected_definition_hash(workflow) == f"sha256:{digest}"
    reordered = {"name": "w", "steps": [{"id": "a", "action": "noop"}]}
    assert expected_definition_hash(reordered) == expected_definition_hash(workflow)
