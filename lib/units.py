"""Unit conversion for dose-report measurements (UCUM codes as vendors write them).

Every supported unit maps to a dimension and a factor to that dimension's base unit. An
unknown unit, or one of the wrong dimension, raises UnitError naming it: never a guess.
"""

from __future__ import annotations


class UnitError(ValueError):
    pass


_UNITS: dict[str, tuple[str, float]] = {}


def _add(dimension: str, factors: dict[str, float]) -> None:
    for name, factor in factors.items():
        _UNITS[name] = (dimension, factor)


# Base units: Gy, Gy.m2, Gy.m (DLP), m, m2, s, V, A, A.s, Bq, Sv, deg, N, kg, 1.
_add("dose", {"Gy": 1.0, "mGy": 1e-3, "uGy": 1e-6, "dGy": 0.1, "cGy": 0.01})
_add("dap", {
    "Gy.m2": 1.0, "Gym2": 1.0, "Gy.m^2": 1.0, "Gy.cm2": 1e-4, "Gy.cm^2": 1e-4, "Gycm2": 1e-4,
    "dGy.cm2": 1e-5, "dGy.cm^2": 1e-5, "dGycm2": 1e-5, "cGy.cm2": 1e-6, "cGy.cm^2": 1e-6,
    "cGycm2": 1e-6, "mGy.cm2": 1e-7, "mGy.cm^2": 1e-7, "mGycm2": 1e-7, "uGy.m2": 1e-6,
    "uGy.cm2": 1e-10, "mGy.m2": 1e-3,
})
_add("dlp", {"mGy.cm": 1e-5, "mGycm": 1e-5, "Gy.cm": 1e-2, "mGy.mm": 1e-6, "Gy.m": 1.0})
_add("length", {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "[in_i]": 0.0254})
_add("area", {"m2": 1.0, "m^2": 1.0, "cm2": 1e-4, "cm^2": 1e-4, "mm2": 1e-6, "mm^2": 1e-6})
_add("time", {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0, "d": 86400.0})
_add("voltage", {"kV": 1e3, "V": 1.0})
_add("current", {"A": 1.0, "mA": 1e-3, "uA": 1e-6})
_add("charge", {"A.s": 1.0, "mA.s": 1e-3, "mAs": 1e-3, "uA.s": 1e-6, "uAs": 1e-6})
_add("activity", {"Bq": 1.0, "kBq": 1e3, "MBq": 1e6, "GBq": 1e9, "mCi": 3.7e7, "uCi": 3.7e4})
_add("effective_dose", {"Sv": 1.0, "mSv": 1e-3, "uSv": 1e-6})
_add("angle", {"deg": 1.0, "rad": 57.29577951308232})
_add("force", {"N": 1.0, "daN": 10.0, "kN": 1e3})
_add("mass", {"kg": 1.0, "g": 1e-3})
_add("count", {
    "1": 1.0, "{ratio}": 1.0, "ratio": 1.0, "{events}": 1.0, "{X-Ray sources}": 1.0,
    "X-ray sources": 1.0, "{X-ray sources}": 1.0, "{pulses}": 1.0, "{pulse}": 1.0,
    "{sd}": 1.0, "no units": 1.0, "{number}": 1.0,
})
_add("age", {"a": 1.0, "mo": 1 / 12, "wk": 7 / 365.25, "d_age": 1 / 365.25})
_add("rate", {"{pulse}/s": 1.0, "/s": 1.0, "Hz": 1.0})
_add("percent", {"%": 1.0})


def convert(value: float, unit: str, target: str) -> float:
    """`value` in `unit` expressed in `target` (both UCUM-ish codes)."""
    unit = unit.strip()
    if unit == target:
        return value
    source = _UNITS.get(unit)
    wanted = _UNITS.get(target)
    if source is None:
        raise UnitError(f"unknown unit '{unit}'")
    if wanted is None:
        raise UnitError(f"unknown target unit '{target}'")
    if source[0] != wanted[0]:
        raise UnitError(f"unit '{unit}' is not a {wanted[0]} unit (expected {target})")
    return value * source[1] / wanted[1]


def known(unit: str) -> bool:
    return unit.strip() in _UNITS
