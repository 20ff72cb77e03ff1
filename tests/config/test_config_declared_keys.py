"""Each config key is declared once, as a field of the part that reads it: the known-key table
is derived from those fields, and reading a part checks the same JSON types as check_config."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from crosskd.config import ConfigError, check_config, load_config, set_key
from crosskd.config.keys import ANY, NULL, NUMBER, has_kind, setting, shape_of
from crosskd.config.reading import read_part
from crosskd.config.schema import KNOWN, PARTS, declared_keys, part_keys
from crosskd.shipped import config_dir

DEMO = config_dir() / "demo" / "msrvtt-demo-cecap.json"


@dataclass(frozen=True)
class _Params:
    weight: float = 1.0


@dataclass(frozen=True)
class _NewTerm:
    """What a new loss term's switch looks like: its fields and nothing else."""

    new_loss: bool = False
    new_params: _Params | None = None
    new_names: dict[str, int] | None = None


@pytest.mark.parametrize(("hint", "kinds"), [
    (int, (int,)), (float, NUMBER), (str | None, (str, NULL)), (bool | int, (bool, int)),
    (list[str], (list,)), (Any, ANY), (dict[str, Any], (dict,)), (_Params, (dict,)),
    (_Params | bool | None, (dict, bool, NULL)),
])
def test_a_field_type_says_which_json_types_its_key_takes(hint, kinds):
    assert shape_of(hint).kinds == kinds


def test_a_field_type_with_no_json_form_is_refused_when_declared():
    with pytest.raises(TypeError, match="cannot hold"):
        shape_of(set[int])


def test_a_new_part_field_is_a_known_key_with_its_types_and_nothing_else_to_edit():
    keys = declared_keys((_NewTerm,))
    assert {path: shape.kinds for path, shape in keys.items()} == {
        ("new_loss",): (bool,), ("new_params",): (dict, NULL),
        ("new_params", "weight"): NUMBER, ("new_names",): (dict, NULL),
        ("new_names", "*"): (int,)}


def test_a_new_part_field_is_read_typed_and_refused_mistyped():
    read = read_part(_NewTerm, {"new_loss": True, "new_params": {"weight": 2},
                                "new_names": {"audio": 3}})
    assert read == _NewTerm(True, _Params(2), {"audio": 3})
    assert read_part(_NewTerm, {}) == _NewTerm()
    with pytest.raises(ConfigError, match=r"^config key new_loss must be bool, not int \(1\)$"):
        read_part(_NewTerm, {"new_loss": 1})
    with pytest.raises(ConfigError, match=r"config key new_names\.audio must be int"):
        read_part(_NewTerm, {"new_names": {"audio": "3"}})


def test_a_key_declared_by_two_parts_is_refused():
    @dataclass(frozen=True)
    class Again:
        epochs: int = setting(1, key="trainer.epochs")

    with pytest.raises(TypeError, match="trainer.epochs is declared twice"):
        declared_keys((*PARTS, Again))


def test_a_required_key_left_out_names_the_key_and_its_hint():
    @dataclass(frozen=True)
    class Needs:
        names: list[str] = setting(missing="list them")

    with pytest.raises(ConfigError, match="^config key names is missing: list them$"):
        read_part(Needs, {})


def _wrong_value(kinds: tuple[type, ...]) -> Any:
    return next(value for value in ("x", 1.5, [], {}, True, None) if not has_kind(value, kinds))


def _declared_by_part() -> list[tuple[type, tuple[str, ...]]]:
    return [(part, path) for part in PARTS for path, shape in part_keys(part)
            if shape.kinds != ANY]


@pytest.mark.parametrize(("part", "path"), _declared_by_part(),
                         ids=lambda item: ".".join(item) if isinstance(item, tuple) else
                         item.__name__)
def test_reading_a_part_refuses_a_mistyped_key_as_check_config_does(part, path):
    """The types are declared once: the part that reads a key and the check of the whole
    config refuse a wrong value in the same words."""
    config = copy.deepcopy(load_config(DEMO))
    concrete = tuple("audio" if segment == "*" else segment for segment in path)
    set_key(config, concrete, _wrong_value(KNOWN[path].kinds))
    with pytest.raises(ConfigError) as checked:
        check_config(config)
    with pytest.raises(ConfigError) as read:
        read_part(part, config)
    assert str(read.value) == str(checked.value)
