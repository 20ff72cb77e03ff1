"""Our own words for a checkpoint that a weights-only unpickler refused.

torch's refusal tells the user how to load the file anyway (re-run with weights_only=False,
or allow-list the global): advice that runs the attacker's code if followed. We keep only
the name of what was refused (a global such as subprocess.Popen, or a pickle opcode) and
say that the file is refused as unsafe.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
import re
from pathlib import Path

from crosskd.safe_pickle import UnsafePickleError

_OPCODES = {ord(op.code): op.name for op in pickletools.opcodes}

_NAMED = (r"GLOBAL ([\w.]+)", r"unrecognized function (.+?)(?: which|$)", r"got (<class [^>]+>)",
          r"refusing to load ([\w.]+)", r"(unexpected persistent id .+?) \(")


class UnsafeCheckpointError(UnsafePickleError):
    """A checkpoint names a class, function or opcode we do not load (it is never run)."""


def _python3_name(dotted: str) -> str:
    """`commands.Popen` (how protocol-2 pickles spell subprocess.Popen) -> `subprocess.Popen`."""
    module, _, name = dotted.rpartition(".")
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return ".".join(_compat_pickle.NAME_MAPPING[(module, name)])
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}" if module else dotted


def refused_name(message: str) -> str:
    """What the unpickler refused, from its message: a dotted name or `opcode NAME (0xNN)`."""
    opcode = re.search(r"Unsupported operand (\d+)", message)
    if opcode:
        code = int(opcode.group(1))
        return f"pickle opcode {_OPCODES.get(code, 'unknown')} (0x{code:02x})"
    for pattern in _NAMED:
        match = re.search(pattern, message, flags=re.MULTILINE)
        if match:
            found = match.group(1).strip()
            python3 = _python3_name(found) if pattern.startswith("GLOBAL") else found
            return python3 if python3 == found else f"{python3} (written as {found})"
    return "an object that is neither a tensor nor plain data"


def unsafe_checkpoint(path: Path, message: str) -> UnsafeCheckpointError:
    """The one-line refusal for `path`; `message` (the unpickler's) is reduced to the name."""
    return UnsafeCheckpointError(
        f"{path}: refusing to load {refused_name(message)}; the file is refused as unsafe "
        "(loading it could run code; nothing in it was run). crosskd reads only tensors, plain "
        "containers, numpy scalars, paths and the original parse_config.ConfigParser from a "
        "checkpoint; delete this file")
