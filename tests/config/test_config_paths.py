"""Key paths with quoted segments: `a."name.with.dots".b` in --set, --custom_args, messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crosskd.config import (ConfigError, apply_overrides, format_path, parse_custom_args,
                            parse_path, parse_set_args, require)

EXPERT = "imagenet.senet154.0"


@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=5))
def test_a_formatted_path_parses_back_to_its_segments(segments):
    assert parse_path(format_path(tuple(segments))) == tuple(segments)


def test_plain_segments_stay_unquoted_and_dotted_names_are_quoted():
    path = ("data_loader", "args", "feat_aggregation", EXPERT, "temporal")
    text = format_path(path)
    assert text == f'data_loader.args.feat_aggregation."{EXPERT}".temporal'
    assert parse_path(text) == path


@pytest.mark.parametrize("text", ["", "a..b", "a.", ".a", 'a."b', 'a."b"c', 'a.b"c"'])
def test_malformed_paths_are_refused(text):
    with pytest.raises(ConfigError, match="config key path"):
        parse_path(text)


def _config():
    return {"data_loader": {"args": {"feat_aggregation": {EXPERT: {"temporal": "avg"}}}}}


@pytest.mark.parametrize("pairs", [
    parse_set_args([f'data_loader.args.feat_aggregation."{EXPERT}".temporal=max']),
    parse_custom_args(f'data_loader.args.feat_aggregation."{EXPERT}".temporal@max'
                      "+trainer.epochs@2"),
], ids=["set", "custom_args"])
def test_both_override_syntaxes_reach_an_experts_own_key(pairs):
    updated = apply_overrides(_config(), pairs)
    assert updated["data_loader"]["args"]["feat_aggregation"][EXPERT] == {"temporal": "max"}
    assert "imagenet" not in updated["data_loader"]["args"]["feat_aggregation"]


def test_require_reads_a_quoted_path():
    assert require(_config(), f'data_loader.args.feat_aggregation."{EXPERT}".temporal',
                   str) == "avg"
