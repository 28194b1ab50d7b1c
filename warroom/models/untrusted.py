"""YAML and JSON from outside (a request body): no YAML aliases or anchors, and a bounded
nesting depth.

``yaml.safe_load`` constructs only plain types, but it still expands aliases: a few hundred
bytes of ``&a [*b, *b, ...]`` lines name a structure of billions of nodes, and anything that
walks it afterwards (validation, JSON encoding) runs for minutes and takes gigabytes. A
configuration sent over HTTP gains nothing from aliases, so they are refused outright, as
is nesting deeper than anyone writes by hand (which would exhaust the parser's recursion).
"""

from __future__ import annotations

from typing import Any

import json

import yaml

MAX_DEPTH = 64
NO_ALIASES = "YAML anchors and aliases are not accepted; write each value out"


class UntrustedDocumentError(ValueError):
    """Why a document was refused, worded to follow "the body ..." (e.g. "is not valid YAML: ...")."""


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing anchors and aliases and nesting beyond MAX_DEPTH."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else "?"
        if isinstance(event, yaml.AliasEvent):
            raise UntrustedDocumentError(f"has an alias (*{event.anchor}) at line {line}: {NO_ALIASES}")
        if getattr(event, "anchor", None) is not None:
            raise UntrustedDocumentError(f"has an anchor (&{event.anchor}) at line {line}: {NO_ALIASES}")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise UntrustedDocumentError(f"nests more than {MAX_DEPTH} levels deep (line {line})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(raw: bytes | str) -> Any:
    """Parse one YAML document from an untrusted source.

    Raises UntrustedDocumentError (a ValueError) for aliases, anchors, deep nesting and
    anything that is not valid YAML, with the reason."""
    try:
        return yaml.load(raw, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except UntrustedDocumentError:
        raise
    except yaml.YAMLError as err:
        raise UntrustedDocumentError(f"is not valid YAML: {err}") from None
    except RecursionError:
        raise UntrustedDocumentError(f"nests more than {MAX_DEPTH} levels deep") from None


def load_json(raw: bytes | str) -> Any:
    """Parse a JSON document from an untrusted source, refusing nesting beyond MAX_DEPTH
    (which would otherwise exhaust the recursion of whatever walks it next)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise UntrustedDocumentError(f"nests more than {MAX_DEPTH} levels deep") from None
    except ValueError as err:
        raise UntrustedDocumentError(f"is not valid JSON: {err}") from None
    if depth_over(data, MAX_DEPTH):
        raise UntrustedDocumentError(f"nests more than {MAX_DEPTH} levels deep")
    return data


def depth_over(data: Any, limit: int) -> bool:
    """Whether lists and mappings in ``data`` nest more than ``limit`` levels (without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
