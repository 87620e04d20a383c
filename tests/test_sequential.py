"""The decision rule of a sequential sweep, checked by simulation: seeds spread 1.5 points,
a margin of 2 points, looks at 3, 5, 7, 9 and 10 seeds (``sequential: {max_seeds: 10, step:
2}`` over three configured seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from hpstudy.core.config import validate_config
from hpstudy.core.errors import HpstudyError
from hpstudy.core.stats import CONTRADICTED, HOLDS, INCONCLUSIVE
from hpstudy.report.sequential import LIMIT, decide_sequentially, look_level, schedule

SPREAD, MARGIN, SWEEPS = 0.015, 0.02, 4000
LOOKS = schedule(3, 2, 10)


def rates(effect: float, seed: int) -> dict[str, float]:
    """How often each verdict ends a sweep whose true effect is ``effect``."""
    rng = np.random.default_rng(seed)
    a = rng.normal(effect, SPREAD, (SWEEPS, LOOKS[-1]))
    b = np.zeros_like(a)  # per-seed differences: a paired design
    verdicts = [decide_sequentially(a[i], b[i], LOOKS, MARGIN).verdict for i in range(SWEEPS)]
    return {v: verdicts.count(v) / SWEEPS for v in set(verdicts)}


def test_the_looks_are_fixed_beforehand():
    assert LOOKS == [3, 5, 7, 9, 10]
    assert schedule(3, 4, 10) == [3, 7, 10] and schedule(10, 2, 10) == [10]
    assert look_level(5) == pytest.approx(0.99)


def test_an_effect_equal_to_the_margin_rarely_holds():
    assert rates(MARGIN, 1).get(HOLDS, 0) <= 0.025


def test_no_effect_is_rarely_called_either_way():
    found = rates(0.0, 2)
    assert found.get(HOLDS, 0) + found.get(CONTRADICTED, 0) <= 0.025


def test_a_five_point_effect_holds_at_least_four_times_in_five():
    assert rates(0.05, 3).get(HOLDS, 0) >= 0.80


def test_a_claim_stops_at_its_first_decided_look_or_at_the_limit():
    clear = decide_sequentially([0.10, 0.11, 0.09, 0.1, 0.1], [0.0] * 5, [3, 5], MARGIN)
    assert (clear.verdict, clear.look, clear.seeds) == (HOLDS, 1, 3)
    noisy = decide_sequentially([0.1, -0.1, 0.05, -0.05, 0.0], [0.0] * 5, [3, 5], MARGIN)
    assert noisy.verdict == INCONCLUSIVE and noisy.reason == LIMIT and noisy.seeds == 5
    assert noisy.text() == "look 2 of 2, 5 seeds: limit reached"


def test_sequential_looks_are_off_by_default_and_checked():
    base = {
        "dataset": {"source": "digits", "name": "digits", "image_size": 48},
        "studies": {"bs": {"param": "batch_size", "values": [10, 450]}},
    }
    assert validate_config(base)["findings"].get("sequential") is None
    on = validate_config({**base, "findings": {"sequential": {"max_seeds": 10, "step": 2}}})
    assert on["findings"]["sequential"] == {"max_seeds": 10, "step": 2}
    for bad in ({"step": 2}, {"max_seeds": 1}, {"max_seeds": 10, "steps": 2}):
        with pytest.raises(HpstudyError, match="sequential"):
            validate_config({**base, "findings": {"sequential": bad}})
    with pytest.raises(HpstudyError, match="sequential"):
        validate_config({**base, "selection": {"sequential": {"max_seeds": "ten"}}})
