"""Several unknown keys, in a config file or in one override flag, are all named in one error
(each with its closest known key), so the user fixes them in one go."""

from __future__ import annotations

import pytest

from crosskd.config import ConfigError, apply_overrides, check_config
from crosskd.data.synth import SynthSpec, example_config


def _config():
    return example_config(SynthSpec(), "/data")


def test_every_unknown_key_of_a_config_is_named_with_its_closest_key():
    config = _config()
    config["trainer"] = {"epoch": 3, "savedir": "x"}
    config["sed"] = 1
    config["data_loader"]["args"]["batchsize"] = 8
    with pytest.raises(ConfigError) as caught:
        check_config(config, "config a.json")
    message = str(caught.value)
    assert message.startswith("config a.json: 4 unknown config keys: ")
    for typo, known in [("trainer.epoch", "trainer.epochs"),
                        ("trainer.savedir", "trainer.save_dir"), ("sed", "seed"),
                        ("data_loader.args.batchsize", "data_loader.args.batch_size")]:
        assert f"{typo} (did you mean {known}?)" in message
    assert "\n" not in message


def test_unknown_keys_are_named_before_a_mistyped_value():
    config = _config()
    config["seed"] = "zero"
    config["trainer"] = {"epoch": 3}
    with pytest.raises(ConfigError, match="unknown config key trainer.epoch; did you mean"):
        check_config(config)


def test_one_unknown_key_keeps_its_message():
    config = _config()
    config["trainer"] = {"epoch": 3}
    with pytest.raises(ConfigError, match=r"^cfg: unknown config key trainer\.epoch; did you "
                                          r"mean trainer\.epochs\?$"):
        check_config(config, "cfg")


def test_many_unknown_keys_stay_one_short_line():
    config = {f"typo{i}\n": i for i in range(40)}
    with pytest.raises(ConfigError) as caught:
        check_config(config)
    message = str(caught.value)
    assert "40 unknown config keys" in message and "and 28 more" in message
    assert "\n" not in message and len(message) < 1000


def test_every_unknown_override_path_of_one_flag_is_named():
    with pytest.raises(ConfigError) as caught:
        apply_overrides(_config(), [("trainer.epoch", "3"), ("seed", "1"),
                                    ("optimizer.typ", '"SGD"')], "--set")
    message = str(caught.value)
    assert message.startswith("--set: 2 unknown config keys: ")
    assert "trainer.epoch (did you mean trainer.epochs?)" in message
    assert "optimizer.typ (did you mean optimizer.type?)" in message
