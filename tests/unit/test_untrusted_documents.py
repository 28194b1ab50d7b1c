"""Untrusted YAML and JSON: aliases, anchors and deep nesting are refused with the reason,
at once (a billion-laughs document must not expand before it is refused)."""

from __future__ import annotations

import time

import pytest

from warroom.models.untrusted import MAX_DEPTH, UntrustedDocumentError, depth_over, load_json, load_yaml

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)


def test_a_billion_laughs_is_refused_at_once() -> None:
    assert len(LAUGHS) < 600
    started = time.monotonic()
    with pytest.raises(UntrustedDocumentError, match=r"anchor \(&a\) at line 1"):
        load_yaml(LAUGHS)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("x: *nowhere\n", "alias (*nowhere) at line 1"),
        ("list:\n  - &one 1\n", "anchor (&one) at line 2"),
        ("x: " + "[" * 65 + "]" * 65, f"nests more than {MAX_DEPTH} levels deep"),
        ("x: [unclosed", "is not valid YAML"),
        ("a: 1\n---\nb: 2\n", "is not valid YAML"),
    ],
)
def test_refused_yaml_says_why(text: str, reason: str) -> None:
    with pytest.raises(UntrustedDocumentError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        load_yaml(text)


def test_plain_yaml_and_json_load_as_before() -> None:
    text = "people:\n  alice: {sms: '+15550100'}\nlevels: [[a, b], [c]]\n"
    assert load_yaml(text) == {"people": {"alice": {"sms": "+15550100"}}, "levels": [["a", "b"], ["c"]]}
    assert load_yaml("x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)) is not None  # the mapping is a level
    assert load_json('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


def test_json_depth_is_bounded_without_recursion() -> None:
    with pytest.raises(UntrustedDocumentError, match="nests more than"):
        load_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UntrustedDocumentError, match="is not valid JSON"):
        load_json("{")
    nested: list = []
    for _ in range(10_000):
        nested = [nested]
    assert depth_over(nested, MAX_DEPTH) and not depth_over([[1]], 2) and depth_over([[[1]]], 2)
