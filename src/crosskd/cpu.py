"""Which CPU this process runs on, in the words every figure and every measured choice use.

AMD and Intel x86 machines pick other kernels (so other speeds and other last bits):
benchmarks print `cpu_description()` beside their figures, the measured product choices
(crosskd.inference.product_table) are kept per CPU it names, and the process context asks
`cpu_flags()` whether bfloat16 products are native (crosskd.process).
"""

from __future__ import annotations

import os
import platform

#: the instruction-set flags that change which kernels (and so which roundings) run
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_fields(cpuinfo: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (`flags` on x86, `Features` on Arm); empty where unknown."""
    fields = cpu_fields(cpuinfo)
    return frozenset((fields.get("flags") or fields.get("Features") or "").split())


def cpu_description() -> str:
    """The CPU: model name, vendor, family/model numbers, the ISA flags that pick kernels,
    logical CPUs."""
    fields = cpu_fields()
    flags = cpu_flags()
    isa = ", ".join(flag for flag in ISA_FLAGS if flag in flags) or "none of " + "/".join(ISA_FLAGS)
    name = fields.get("model name") or platform.processor() or platform.machine()
    return (f"{name} ({fields.get('vendor_id', '?')}, family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')}; {isa}; {os.cpu_count()} logical CPUs)")
