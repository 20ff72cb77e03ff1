"""The pretrained experts (transformers models), listed for the registry."""

from __future__ import annotations

from crosskd.extract.expert import Expert

PRETRAINED_EXPERTS: tuple[type[Expert], ...] = ()
