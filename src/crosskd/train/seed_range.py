"""The seeds every generator of a run accepts; torch-free, so option parsing stays light."""

from __future__ import annotations

from crosskd.errors import UserError

MAX_SEED = 2**32 - 1  # numpy's legacy seeding accepts 0 ... 2**32 - 1


def check_seed(seed: int, source: str) -> int:
    """`seed` if every generator accepts it; else a UserError naming `source` (flag or key)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"{source}: seed {seed!r} is out of range; use an integer from 0 to "
                        f"{MAX_SEED} (2**32 - 1)")
    return seed
