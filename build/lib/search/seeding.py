"""Random streams keyed by what they are for.

One seed flows from the config to every component; a component never draws from a
process-wide RNG. Each random draw comes from a stream named by what it is for (the run's
seed, a problem id, a request number within that problem; or a solution and a step), so a
problem gets the same numbers whichever batch, worker or resumed process runs it.
"""

from __future__ import annotations

import hashlib

_SEP = "\x1f"  # unit separator: cannot be confused with text inside a part


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a fixed function of ``parts`` (ints and strings), the same in
    every process and on every machine (unlike ``hash``, which is salted per process)."""
    for part in parts:
        if not isinstance(part, int | str) or isinstance(part, bool):
            raise TypeError(f"expected int or str seed parts, got {type(part).__name__}")
    text = _SEP.join(f"{type(part).__name__}:{part}" for part in parts)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
