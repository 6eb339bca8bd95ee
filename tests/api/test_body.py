"""The byte-level JSON nesting check agrees with a walk of the parsed value."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.api.body import nesting_depth_exceeds


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


tricky_text = st.text(alphabet=st.sampled_from('ab"\\[]{}\n\u00e9\u2028'), max_size=8)
# orjson reads integers up to 64 bits (a larger one is refused as invalid JSON, 400), so the
# round trip this test starts from holds only within that range; depth is unaffected by size.
integers = st.integers(min_value=-(2**63), max_value=2**64 - 1)
values = st.recursive(
    st.none() | st.booleans() | integers | tricky_text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=40,
)


@settings(max_examples=400)
@given(values, st.integers(min_value=1, max_value=12), st.booleans())
def test_agrees_with_a_walk_of_the_parsed_value(value: Any, limit: int, pretty: bool) -> None:
    raw = json.dumps(value, indent=2 if pretty else None).encode()
    assert orjson.loads(raw) == value
    assert nesting_depth_exceeds(raw, limit) == (depth(value) > limit)


def test_deep_and_shallow_documents() -> None:
    assert nesting_depth_exceeds(b"[" * 65 + b"]" * 65, 64)
    assert not nesting_depth_exceeds(b"[" * 64 + b"]" * 64, 64)
    assert not nesting_depth_exceeds(b'{"a": "[[[[[[[[[[[[[[[[[[[[[["}', 2)
    assert not nesting_depth_exceeds(b'"just a string"', 1)
