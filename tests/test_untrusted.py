"""The primitives every untrusted value goes through: containment, ASCII integers, terminal text."""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosskd.untrusted import (UnsafePathError, ascii_int, contained, json_object_file,
                               terminal_safe)


def test_a_path_inside_its_root_is_resolved(tmp_path):
    (tmp_path / "a").mkdir()
    assert contained(tmp_path, "a/../a/b.txt", "test") == (tmp_path / "a" / "b.txt").resolve()
    assert contained(tmp_path, tmp_path / "a", "test") == (tmp_path / "a").resolve()


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "a/\x00b"])
def test_paths_outside_their_root_are_refused(tmp_path, path):
    with pytest.raises(UnsafePathError, match="record 'v1'"):
        contained(tmp_path / "root", path, "record 'v1'")


def test_a_symlink_at_any_level_is_followed_before_the_check(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "deep").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("x")
    os.symlink(outside, root / "deep" / "link")  # a folder link below the root
    os.symlink(outside, root / "media")  # the folder itself a link
    for name in ("deep/link/secret", "media/secret", "media"):
        with pytest.raises(UnsafePathError, match="points outside"):
            contained(root, name, "media table")


def test_a_linked_root_is_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    assert contained(tmp_path / "alias", "f", "x") == (tmp_path / "real" / "f")


@given(st.integers(min_value=-10**30, max_value=10**30))
def test_ascii_integers_round_trip(value):
    assert ascii_int(str(value), "n") == value


@pytest.mark.parametrize("text", ["²", "٣", "１", "1²", "", "1.0", "0x10", "1_000", " ", "+"])
def test_non_ascii_or_non_integer_digits_are_refused(text):
    with pytest.raises(ValueError, match="is not a whole number"):
        ascii_int(text, "--shard")


def test_range_is_checked_and_named():
    assert ascii_int(" 7 ", "k", low=1, high=10) == 7
    with pytest.raises(ValueError, match="k: 0 is out of range; use a whole number from 1 to 10"):
        ascii_int("0", "k", low=1, high=10)


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b]0;owned\x07title", "\\x1b]0;owned\\x07title"),
    ("line\nbreak\ttab", "line\\x0abreak\\x09tab"),
    ("\x9bc", "\\x9bc"),
    ("abc\u202edef", "abc\\u202edef"),
    ("café 日本 a\u00a0b", "café 日本 a\u00a0b"),
    ("wide\u3000space", "wide\u3000space"),
])
def test_terminal_text_shows_control_characters_escaped(text, shown):
    assert terminal_safe(text) == shown


@given(st.text())
def test_terminal_text_holds_no_control_character(text):
    safe = terminal_safe(text)
    assert all(ch.isprintable() or ch.isspace() and ch not in "\n\r\t\x0b\x0c\x1c\x1d\x1e\x1f\x85"
               for ch in safe)
    if text.isprintable():
        assert safe == text


def test_a_json_object_file_is_read_or_refused_in_one_line(tmp_path):
    from crosskd.errors import UserError

    path = tmp_path / "record.json"
    assert json_object_file(path, "; fix it", "is not an object; fix it") is None
    path.write_text('{"a": 1}', encoding="utf-8")
    assert json_object_file(path, "; fix it", "is not an object; fix it") == {"a": 1}
    for text, said in (("[1, 2]", "record.json is not an object; fix it"),
                       ("{", "record.json cannot be read (Expecting")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(UserError, match=re.escape(said)):
            json_object_file(path, "; fix it", "is not an object; fix it")
