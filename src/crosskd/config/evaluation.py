"""The test's own settings: QB-Norm (`qbnorm`), usually set in `eval_settings` so that only
the final test uses it (validation and model selection never do)."""

from __future__ import annotations

from typing import Any, Mapping

from crosskd.config.values import require
from crosskd.errors import ConfigError
from crosskd.qbnorm import DEFAULT_BETA, check_beta


def qbnorm_beta(config: Mapping[str, Any]) -> float | None:
    """QB-Norm's beta when the config's `qbnorm` key turns it on (`true`, `{}` or
    `{"beta": B}`; the official 20 unless given), None when it is absent, null or false."""
    setting = require(config, "qbnorm", (dict, bool, type(None)), default=None)
    if setting is None or setting is False:
        return None
    beta = require(config, "qbnorm.beta", (int, float), default=DEFAULT_BETA) \
        if isinstance(setting, dict) else DEFAULT_BETA
    try:
        return check_beta(beta)
    except ValueError as err:
        raise ConfigError(f"config key qbnorm.beta: {err}") from None
