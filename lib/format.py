"""Values as people read them on pages (the export keeps the schema's units and raw text).

Rules (docs/display.md):
- Numbers: 4 significant figures, trailing zeros dropped, never fewer digits than the whole
  part has (1234.56 -> "1235", 23.589999 -> "23.59", 0.000123 -> "0.000123"); whole parts of
  five digits or more are grouped in threes with a narrow no-break space, as the SI brochure
  writes them ("1 234 567"; a comma would read as a decimal point in much of Europe).
  Scientific notation only outside 1e-6 .. 1e15, written "1.2×10⁻⁷".
- DAP in a site unit (cGy·cm² unless DOSEPORT_DAP_UNIT says otherwise); dose at the reference
  point in mGy.
- DICOM text: "^" separates components ("Thorax^RTP_4DCT" -> "Thorax RTP_4DCT"); "^18^"
  marks a superscript mass number ("^18^Fluorine" -> "¹⁸Fluorine"); person names
  "DOE^JANE" -> "DOE, JANE".
- Dates "12 Apr 2013", date-times "12 Apr 2013 13:22" (events: with seconds); a missing date
  is "date unknown".
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal

DIGITS = 4
# Outside this range a number is not an "ordinary value" and gets a power of ten.
_PLAIN_MIN, _PLAIN_MAX = 1e-6, 1e15
_GROUP_FROM = 5  # SI: four-digit whole parts are not grouped
_NNBSP = "\u202f"
_SUPERSCRIPT = str.maketrans("0123456789+-m", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ᵐ")

DATE_FORMAT = "%d %b %Y"
TIME_FORMAT = "%H:%M"
DATE_UNKNOWN = "date unknown"


@dataclass(frozen=True)
class DapUnit:
    """A unit for showing DAP: `per_Gym2` of it make one Gy·m²."""

    code: str
    label: str
    per_Gym2: float


DAP_UNITS: dict[str, DapUnit] = {
    u.code: u
    for u in (
        DapUnit("cGy.cm2", "cGy·cm²", 1e6),
        DapUnit("uGy.m2", "µGy·m²", 1e6),
        DapUnit("Gy.cm2", "Gy·cm²", 1e4),
        DapUnit("dGy.cm2", "dGy·cm²", 1e5),
        DapUnit("mGy.cm2", "mGy·cm²", 1e7),
        DapUnit("Gy.m2", "Gy·m²", 1.0),
    )
}
DEFAULT_DAP_UNIT = "cGy.cm2"


def _group(whole: str) -> str:
    sign, digits = ("-", whole[1:]) if whole.startswith("-") else ("", whole)
    if len(digits) < _GROUP_FROM:
        return whole
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)]
    return sign + _NNBSP.join(parts)


def _strip_zeros(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scientific(value: float, digits: int) -> str:
    mantissa, _, exponent = f"{value:.{digits - 1}e}".partition("e")
    return f"{_strip_zeros(mantissa)}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def number(value: object, digits: int = DIGITS) -> str:
    """`value` to `digits` significant figures for reading; "" for None or ""."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return _group(str(value))
    if not isinstance(value, float | Decimal):
        return str(value)
    x = float(value)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if not _PLAIN_MIN <= abs(x) < _PLAIN_MAX:
        return _scientific(x, digits)
    magnitude = math.floor(math.log10(abs(x)))
    text = _strip_zeros(f"{x:.{max(digits - 1 - magnitude, 0)}f}")
    if text in ("-0", "0"):
        return "0"
    whole, dot, fraction = text.partition(".")
    return _group(whole) + dot + fraction


def dap_unit(code: str) -> DapUnit:
    try:
        return DAP_UNITS[code]
    except KeyError:
        raise ValueError(
            f"unknown DAP unit {code!r}: use one of {', '.join(DAP_UNITS)}"
        ) from None


def dap(value_Gym2: float | None, unit: str = DEFAULT_DAP_UNIT) -> str:
    """A DAP stored in Gy·m² (the schema unit) as a number in `unit`, without the unit."""
    if value_Gym2 is None:
        return ""
    return number(float(value_Gym2) * dap_unit(unit).per_Gym2)


def dose_rp(value_Gy: float | None) -> str:
    """Dose at the reference point stored in Gy, shown in mGy."""
    if value_Gy is None:
        return ""
    return number(float(value_Gy) * 1000.0)


def duration(seconds: float | None) -> str:
    """Fluoroscopy and exposure times: "42.5 s" below a minute, "5 min 12 s" above."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{number(float(seconds))} s"
    minutes, rest = divmod(round(float(seconds)), 60)
    return f"{minutes} min {rest} s"


_SUPERSCRIPT_MARK = re.compile(r"\^(\d{1,3}m?)\^")
_SPACES = re.compile(r"\s+")


def dicom_text(value: object) -> str:
    """Caret-separated DICOM text as people write it; ^nn^ is a superscript mass number."""
    if value is None:
        return ""
    text = _SUPERSCRIPT_MARK.sub(lambda m: m.group(1).translate(_SUPERSCRIPT), str(value))
    return _SPACES.sub(" ", text.replace("^", " ")).strip()


def person_name(value: object) -> str:
    """A DICOM PN ("family^given^middle^prefix^suffix") as "prefix FAMILY, given middle, suffix"."""
    if value is None:
        return ""
    alphabetic = str(value).split("=")[0]
    parts = [p.strip() for p in alphabetic.split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    forenames = " ".join(p for p in (given, middle) if p)
    name = ", ".join(p for p in (family, forenames) if p)
    name = " ".join(p for p in (prefix, name) if p)
    return ", ".join(p for p in (name, suffix) if p)


def _as_datetime(value: object) -> dt.datetime | dt.date | None:
    if isinstance(value, dt.datetime | dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def date_text(value: object) -> str:
    """"12 Apr 2013"; "date unknown" for a missing date."""
    when = _as_datetime(value)
    if when is None:
        return DATE_UNKNOWN
    return when.strftime(DATE_FORMAT)


def datetime_text(
    value: object, zone: dt.tzinfo | None = None, seconds: bool = False
) -> str:
    """"12 Apr 2013 13:22" ("13:22:23" with seconds); "date unknown" when missing.

    `zone` converts an aware value (a moment Doseport recorded, such as when an object
    arrived); leave it None for times as the modality recorded them, which are shown as
    they are.
    """
    when = _as_datetime(value)
    if when is None:
        return DATE_UNKNOWN
    if not isinstance(when, dt.datetime):
        return when.strftime(DATE_FORMAT)
    if zone is not None and when.tzinfo is not None:
        when = when.astimezone(zone)
    return when.strftime(f"{DATE_FORMAT} {TIME_FORMAT}{':%S' if seconds else ''}")


def time_text(value: object, seconds: bool = False) -> str:
    if isinstance(value, dt.datetime | dt.time):
        return value.strftime(TIME_FORMAT + (":%S" if seconds else ""))
    return ""


def study_when(date: dt.date | None, time: dt.time | None) -> str:
    """A study's date and time: "12 Apr 2013 13:22", "12 Apr 2013", or "date unknown"."""
    if date is None:
        return DATE_UNKNOWN
    if time is None:
        return date.strftime(DATE_FORMAT)
    return f"{date.strftime(DATE_FORMAT)} {time.strftime(TIME_FORMAT)}"


def event_time(value: object, study_date: object = None) -> str:
    """An event's start with seconds; the time alone when it is on the study's date."""
    when = _as_datetime(value)
    if not isinstance(when, dt.datetime):
        return ""
    day = _as_datetime(study_date)
    if day is not None and when.date() == (day.date() if isinstance(day, dt.datetime) else day):
        return time_text(when, seconds=True)
    return datetime_text(when, seconds=True)


_AGE_UNITS = {"Y": ("year", "years"), "M": ("month", "months"), "W": ("week", "weeks"),
              "D": ("day", "days")}


def age(value: object) -> str:
    """A DICOM AS age ("063Y") as "63 years"; other text as it is."""
    text = str(value or "").strip()
    if len(text) == 4 and text[:3].isdigit() and text[3].upper() in _AGE_UNITS:
        n = int(text[:3])
        one, many = _AGE_UNITS[text[3].upper()]
        return f"{n} {one if n == 1 else many}"
    return text


def half_life(seconds: float | None) -> str:
    """A radionuclide half-life in the unit people quote it in: 109.8 min, 6.007 h, 8.021 d."""
    if seconds is None:
        return ""
    s = float(seconds)
    for limit, size, unit in ((120, 1, "s"), (7200, 60, "min"), (172800, 3600, "h")):
        if s < limit:
            return f"{number(s / size)} {unit}"
    return f"{number(s / 86400)} d"


_ELEMENTS = {
    "aluminum": "Al", "aluminium": "Al", "copper": "Cu", "molybdenum": "Mo", "rhodium": "Rh",
    "silver": "Ag", "tungsten": "W", "tin": "Sn", "lead": "Pb", "tantalum": "Ta",
    "niobium": "Nb", "titanium": "Ti", "yttrium": "Y", "gadolinium": "Gd", "erbium": "Er",
}


def material(value: object) -> str:
    """A filter or anode material by its chemical symbol, as physicists write it:
    "Copper or Copper compound" -> "Cu"; anything else as it is."""
    text = dicom_text(value)
    name = text.split(" or ")[0].strip().lower()
    return _ELEMENTS.get(name, text)
