"""The test's own settings: QB-Norm (`qbnorm`), usually set in `eval_settings` so that only
the final test uses it (validation and model selection never do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from crosskd.config.reading import read_field
from crosskd.errors import ConfigError
from crosskd.qbnorm import DEFAULT_BETA, check_beta


@dataclass(frozen=True)
class QBNorm:
    """`qbnorm` written as an object: its `beta`, the official 20 unless given."""

    beta: float = DEFAULT_BETA


@dataclass(frozen=True)
class EvaluationKeys:
    """The keys of the test alone: `qbnorm` is `true`, `{}` or `{"beta": B}` to turn QB-Norm
    on, null or false (or left out) to leave it off."""

    qbnorm: QBNorm | bool | None = None


def qbnorm_beta(config: Mapping[str, Any]) -> float | None:
    """QB-Norm's beta when the config's `qbnorm` key turns it on, else None."""
    setting = read_field(EvaluationKeys, "qbnorm", config)
    if setting is None or setting is False:
        return None
    beta = setting.beta if isinstance(setting, QBNorm) else DEFAULT_BETA
    try:
        return check_beta(beta)
    except ValueError as err:
        raise ConfigError(f"config key qbnorm.beta: {err}") from None
