"""Human-preference *proxies*: the paper's A/B preference numbers, with metrics standing in for people.

The paper asks people which of two videos looks more realistic (vid2vid vs pix2pixHD and others)
and reports the fraction preferring each. Here each held-out segment is one "question": system A
wins a dimension when its score is better by more than ``tolerance`` (relative), a tie counts half
to each side, so ``P(A ≻ B) + P(B ≻ A) = 1``. The interval is Wilson's score interval (95 %), which
stays inside [0, 1] and is sensible for few questions. These are proxies, not human judgements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Preference:
    """``P(A ≻ B)`` over ``questions`` comparisons, with its 95 % Wilson interval."""

    wins: int
    ties: int
    losses: int
    rate: float  # (wins + ties / 2) / questions
    low: float
    high: float

    @property
    def questions(self) -> int:
        return self.wins + self.ties + self.losses

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "questions": self.questions}


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (ties may make ``successes`` a half-integer)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact ends: no rounding dust at p = 0 or 1
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def preference(
    a: Sequence[float],  # system A's score per question
    b: Sequence[float],  # system B's score per question (same questions, same order)
    lower_is_better: bool = True,
    tolerance: float = 0.0,  # relative: |a - b| <= tolerance * max(|a|, |b|) is a tie
) -> Preference:
    """Count A's wins, ties and losses against B and turn them into ``P(A ≻ B)``."""
    if len(a) != len(b):
        raise ValueError(f"preference: {len(a)} scores for A but {len(b)} for B")
    wins = ties = losses = 0
    for x, y in zip(a, b, strict=True):
        if abs(x - y) <= tolerance * max(abs(x), abs(y)):
            ties += 1
        elif (x < y) == lower_is_better:
            wins += 1
        else:
            losses += 1
    n = wins + ties + losses
    rate = (wins + ties / 2) / n if n else 0.5
    low, high = wilson_interval(wins + ties / 2, n)
    return Preference(wins, ties, losses, rate, low, high)


def combine(parts: Sequence[Preference]) -> Preference:
    """All dimensions' questions pooled into one preference."""
    wins, ties, losses = (sum(getattr(p, k) for p in parts) for k in ("wins", "ties", "losses"))
    n = wins + ties + losses
    rate = (wins + ties / 2) / n if n else 0.5
    low, high = wilson_interval(wins + ties / 2, n)
    return Preference(wins, ties, losses, rate, low, high)
