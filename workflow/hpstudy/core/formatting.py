"""A value's text, written one way everywhere: run folder names, tables, figures, findings.

:func:`format_value` is exact (two different values never share a text) and reads as people
write numbers: ``0.01``, ``0.5``, ``256``, ``1e-04``, ``1e-07``, ``5-5-7``, ``true``.
"""

from __future__ import annotations

import math

import numpy as np

from hpstudy.core import schema

SCIENTIFIC_BELOW = 1e-3  # |x| below this (or at SCIENTIFIC_FROM and above) is written 1e-04
SCIENTIFIC_FROM = 1e5


def format_float(value: float) -> str:
    """The shortest exact text of a float: ``0.01``, ``1``, ``2.5e-03``, ``1e-07``."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    if SCIENTIFIC_BELOW <= abs(value) < SCIENTIFIC_FROM:
        text = repr(value)  # the shortest text that reads back as the same float
        return text[:-2] if text.endswith(".0") else text
    for digits in range(17):
        text = f"{value:.{digits}e}"
        if float(text) == value:
            return text
    return repr(value)


def format_value(value: object) -> str:
    """A setting's value as text: exact, stable, path-safe for the values settings take."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "-".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return "-".join(f"{key}{format_value(v)}" for key, v in value.items())
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return format_float(float(value))
    return str(value)


def sort_key(value: object) -> tuple:
    """Order for a setting's values: numbers by size, ``a-b-c`` widths by total then parts,
    booleans false first, text alphabetically."""
    if isinstance(value, bool | np.bool_):
        return (1, float(value), ())
    if isinstance(value, int | float | np.integer | np.floating):
        return (0, float(value), ())
    text = str(value)
    try:
        return (0, float(text), ())
    except ValueError:
        pass
    parts = text.split("-")
    if all(p.isdigit() for p in parts):
        ints = tuple(int(p) for p in parts)
        return (0, float(sum(ints)), ints)
    return (2, 0.0, (text,))


def pct(fraction: float, sep: str = "") -> str:
    """An accuracy fraction as a percentage with one decimal: ``81.2%`` (``sep`` goes before
    the sign: ``81.2 %``)."""
    return f"{fraction * 100:.1f}{sep}%"


def pct_interval(mean: float, low: float, high: float, seeds: int) -> str:
    """A mean accuracy with its 95 % interval and the seeds behind it:
    ``81.2% [79.0%, 83.4%] (3 seeds)``; one seed has no interval."""
    if seeds < 2 or low != low:
        return f"{pct(mean)} (1 seed, no interval)"
    return f"{pct(mean)} [{pct(max(low, 0.0))}, {pct(min(high, 1.0))}] ({seeds} seeds)"


def signed_points(fraction: float) -> str:
    """A difference of accuracy fractions as a bare signed number of points: ``+1.3``."""
    return f"{fraction * 100:+.1f}"


def points(fraction: float) -> str:
    """A difference of accuracy fractions in percentage points: ``+1.3 points``."""
    return f"{signed_points(fraction)} points"


def setting_label(key: str) -> str:
    """A setting's name on an axis or in a sentence (its schema title)."""
    return schema.title(key)


def points_size(fraction: float) -> str:
    """A size in percentage points, unsigned (a margin, a spread): ``2.0 points``."""
    return f"{fraction * 100:.1f} points"


def points_interval(effect: float, low: float, high: float) -> str:
    """An effect in points with its interval: ``+3.1 points [-0.4, +6.6]``."""
    if low == high:
        return f"{points(effect)} (no spread)"
    return f"{points(effect)} [{signed_points(low)}, {signed_points(high)}]"


def relative(fraction: float, sign: bool = True) -> str:
    """A relative change as a whole percentage: ``-42%`` (``5%`` unsigned)."""
    return f"{fraction * 100:+.0f}%" if sign else f"{fraction * 100:.0f}%"


def relative_interval(effect: float, low: float, high: float) -> str:
    """A relative change with its interval: ``-42% [-48%, -35%]``."""
    if low == high:
        return f"{relative(effect)} (no spread)"
    return f"{relative(effect)} [{relative(low)}, {relative(high)}]"
