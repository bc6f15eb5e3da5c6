"""Tests for asgibridge_any.typing: the same ASGI types, under the same names, as asgiref."""

from __future__ import annotations

import typing

import asgiref.typing
import pytest

import asgibridge_any.typing as ours


def test_every_asgiref_typing_name_exists() -> None:
    missing = [name for name in asgiref.typing.__all__ if not hasattr(ours, name)]
    assert missing == []
    assert set(asgiref.typing.__all__) <= set(ours.__all__)


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in asgiref.typing.__all__
        if typing.is_typeddict(getattr(asgiref.typing, name))
    ],
)
def test_typeddicts_have_the_same_required_and_optional_keys(name: str) -> None:
    theirs, mine = getattr(asgiref.typing, name), getattr(ours, name)
    assert typing.is_typeddict(mine)
    assert mine.__required_keys__ == theirs.__required_keys__
    assert mine.__optional_keys__ == theirs.__optional_keys__


def test_event_type_literals_match_asgiref() -> None:
    for name in asgiref.typing.__all__:
        theirs = getattr(asgiref.typing, name)
        if typing.is_typeddict(theirs) and name != "ASGIVersions":
            mine = typing.get_type_hints(getattr(ours, name))["type"]
            assert mine == typing.get_type_hints(theirs)["type"], name


def test_scope_unions_hold_the_same_members() -> None:
    def names(alias: object) -> set[str]:
        return {member.__name__ for member in typing.get_args(alias)}

    for alias in ("Scope", "WWWScope", "ASGIReceiveEvent", "ASGISendEvent"):
        assert names(getattr(ours, alias)) == names(getattr(asgiref.typing, alias)), (
            alias
        )
