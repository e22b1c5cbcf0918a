"""One vocabulary for a side of the body (breasts): L, R or B, whatever the source's words."""

from __future__ import annotations

# Words for a side in dose reports (SNOMED/DCM code meanings) and image headers.
_SIDES = {
    "L": "L", "LEFT": "L", "LEFT BREAST": "L", "R": "R", "RIGHT": "R", "RIGHT BREAST": "R",
    "B": "B", "BOTH": "B", "BOTH BREASTS": "B", "BILATERAL": "B", "BOTH BREAST": "B",
    "LEFT AND RIGHT": "B",
}


def laterality_code(words: str) -> str:
    """'L', 'R' or 'B' (both) for a laterality in any source's words; '' when unknown."""
    return _SIDES.get(" ".join(str(words or "").upper().split()), "")
