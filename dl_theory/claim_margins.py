"""How far inside its bound a claim's measurement lies, and which far-inside claims lack a reason.

A bound far above (or below) what is measured tests nothing: almost any measurement, the
constant predictor's included, would pass it. The protocol therefore asks of every claim whose
measurement is more than `MARGIN_LIMIT` times inside its bound that its spec says why the
margin is the point (`ClaimSpec.margin_why`, e.g. "exact arithmetic: the error is zero up to
rounding") AND that the run recorded a baseline that the same bound rejects
(`Claim.baseline_holds is False`), so that the claim demonstrably could have failed.

The inside factor of a measured value v against one side of a bound B (for an estimate, v is
its point value):

- B > 0 and v > 0: B / v for `at_most`, v / B for `at_least` (how many times larger the
  measurement could have been, or smaller, and still passed);
- B < 0 and v < 0: the same on magnitudes, v / B for `at_most` and B / v for `at_least`
  (a slope <= -0.5 measured at -1.0 is inside by 2);
- v = 0, or v and B of opposite signs: infinite when v is on the bound's passing side (an
  error of exactly 0 against at_most 1e-9, a slope of +0.01 against at_least -0.25), 0 when
  it is on the failing side: no rescaling of v reaches B;
- B = 0 (a sign bound: "the slope is negative"): undefined (None). A sign has no scale to be
  far inside of; such a claim is judged by whether its value (its whole interval) has the sign.

A two-sided range [lo, hi] is inside by the smaller of its two sides' factors (the nearer wall;
a side with B = 0 is left out, and a range with both sides 0 is undefined). A value below 1
means the claim fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

MARGIN_LIMIT = 100.0


def _side_factor(value: float, bound: float, side: str) -> float | None:
    if bound == 0:
        return None
    if value == 0 or (value > 0) != (bound > 0):
        passing = value <= bound if side == "at_most" else value >= bound
        return math.inf if passing else 0.0
    ratio = bound / value if side == "at_most" else value / bound
    # On negative numbers the larger magnitude is the smaller number: invert.
    return ratio if bound > 0 else 1.0 / ratio


def inside_factor(value: float, at_least: float | None, at_most: float | None) -> float | None:
    """How many times inside its bound `value` lies (see the module docstring): >= 1 when the
    bound holds, infinite for a value across zero from its bound, None for a sign bound or a
    non-finite value."""
    if value is None or not math.isfinite(value):
        return None
    factors = [_side_factor(value, bound, side)
               for bound, side in ((at_least, "at_least"), (at_most, "at_most"))
               if bound is not None]
    factors = [f for f in factors if f is not None]
    return min(factors) if factors else None


def unexplained_margins(claims: Iterable[Mapping[str, Any]], margin_whys: Mapping[str, str],
                        limit: float = MARGIN_LIMIT) -> list[str]:
    """One line per claim record (results.json's "claims" entries) that holds more than `limit`
    times inside its bound without both a reason (`margin_whys[claim id]`, the spec's
    `margin_why`) and a recorded baseline that fails the same bound."""
    problems = []
    for claim in claims:
        factor = inside_factor(claim["measured"], claim.get("at_least"), claim.get("at_most"))
        if factor is None or factor <= limit:
            continue
        missing = []
        if not margin_whys.get(claim["id"]):
            missing.append("no margin_why in its spec")
        if claim.get("baseline_holds") is not False:
            missing.append("no recorded baseline that fails the bound"
                           if claim.get("baseline_holds") is None else
                           f"its baseline {claim.get('baseline_name') or ''} "
                           f"({claim.get('baseline')}) passes the bound too")
        if missing:
            problems.append(f"{claim['id']}: measured {claim['measured']:.4g} is {factor:.3g}x "
                            f"inside {claim['expected']}; {' and '.join(missing)}")
    return problems
