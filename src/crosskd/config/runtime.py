"""The runtime part of a config: the speed and memory options as the config states them.

Each field is the key `trainer.<field>` (crosskd.config.keys): a new option is a field here,
with its values in `check`. What they mean on a given machine is decided in
crosskd.train.runtime.resolve_runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from crosskd.config.reading import read_part
from crosskd.errors import ConfigError

#: `trainer.amp` values (crosskd.inference.precision maps them to autocast dtypes).
AMP_NAMES = ("bf16", "fp32", "off", None)
_AUTO_OR_BOOL = ("auto", True, False)
#: `trainer.cpu_matmul` values (crosskd.ops.cpu_matmul): "auto" picks per machine.
CPU_MATMUL_NAMES = ("auto", "onednn", "torch")


@dataclass(frozen=True)
class RuntimeSettings:
    """The runtime options as the config states them (None / "auto": decided per device)."""

    SECTION: ClassVar[str] = "trainer"

    amp: str | None = None
    compile: bool = False
    cuda_graphs: str | bool = "auto"
    optimizer_in_backward: bool | None = None
    resident_data: str | bool = "auto"
    background_checkpoints: bool | None = None
    cpu_matmul: str = "auto"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RuntimeSettings:
        """Read and check the options of a config's `trainer` section."""
        settings = read_part(cls, config)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse a value of the wrong kind, naming the key and what it may be."""
        expected = {
            "amp": (isinstance(self.amp, (str, type(None))) and self.amp in AMP_NAMES,
                    f"one of {sorted(k for k in AMP_NAMES if k)} or null"),
            "compile": (isinstance(self.compile, bool), "true or false"),
            "cuda_graphs": (self.cuda_graphs in _AUTO_OR_BOOL, "\"auto\", true or false"),
            "optimizer_in_backward": (self.optimizer_in_backward in (None, True, False),
                                      "true, false or null"),
            "resident_data": (self.resident_data in _AUTO_OR_BOOL, "\"auto\", true or false"),
            "background_checkpoints": (self.background_checkpoints in (None, True, False),
                                       "true, false or null"),
            "cpu_matmul": (isinstance(self.cpu_matmul, str)
                           and self.cpu_matmul in CPU_MATMUL_NAMES,
                           " or ".join(f'"{name}"' for name in CPU_MATMUL_NAMES)),
        }
        for key, (valid, wanted) in expected.items():
            if not valid or (key != "amp" and _is_number(getattr(self, key))):
                raise ConfigError(f"config key trainer.{key}: expected {wanted}, got "
                                  f"{getattr(self, key)!r}")


def _is_number(value: Any) -> bool:
    """1 == True in Python: a setting given as a number is refused, not read as a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
