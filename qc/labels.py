"""What the sonographer says a capture shows: side, structure, scan plane, imaging mode and Doppler angle.

A :class:`CaptureLabels` arrives inside a capture request as JSON and is validated once, here::

    {"side": "R" | "L" | "none", "structure": "CCA" | null, "plane": "transverse" | "longitudinal" | null,
     "mode": "b_mode" | "colour_doppler" | "power_doppler" | "pw_doppler" | "triplex",
     "doppler_angle": 60 | null}

Every field is optional (defaults: side "none", B-mode, nothing else). Structures are a closed vocabulary
(:data:`STRUCTURES`, matched case-insensitively) because each one maps to a SNOMED CT code that the image
carries in Primary Anatomic Structure Sequence and that the reports will use; the scan planes map to CID 6
(Transducer Orientation) codes for View Code Sequence.

Error tree::

    ValueError
    └── LabelsError(code="invalid_labels", message): any field missing its shape or vocabulary
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

SIDES = ("R", "L", "none")
PLANES = ("transverse", "longitudinal")
# mode -> ultrasound Image Type value 4 (PS3.3 C.8.5.6.1.1): 0001 2D, 0008 PW, 0010 colour flow, 0100 power
MODES: dict[str, str] = {
    "b_mode": "0001",
    "colour_doppler": "0011",
    "power_doppler": "0101",
    "pw_doppler": "0009",
    "triplex": "0019",
}
MODE_NAMES = {
    "b_mode": "B-mode",
    "colour_doppler": "colour Doppler",
    "power_doppler": "power Doppler",
    "pw_doppler": "PW Doppler",
    "triplex": "triplex",
}
COLOUR_MODES = frozenset({"colour_doppler", "power_doppler", "triplex"})
DOPPLER_MODES = frozenset({"colour_doppler", "power_doppler", "pw_doppler", "triplex"})
# canonical structure name -> exam it belongs to (the codes live in ultrasound.py, next to the DICOM)
STRUCTURES: dict[str, str] = {
    "thyroid right lobe": "thyroid",
    "thyroid left lobe": "thyroid",
    "thyroid isthmus": "thyroid",
    "CCA": "carotid",
    "ICA": "carotid",
    "ECA": "carotid",
    "bulb": "carotid",
    "vertebral": "carotid",
}
_STRUCTURE_BY_FOLDED = {name.casefold(): name for name in STRUCTURES}
MAX_DOPPLER_ANGLE = 90.0


class LabelsError(ValueError):
    """Labels refused; answered to the console as ``{"error": code, "message": message}``."""

    def __init__(self, message: str, code: str = "invalid_labels") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CaptureLabels:
    side: str = "none"
    structure: str | None = None
    plane: str | None = None
    mode: str = "b_mode"
    doppler_angle: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.side, str) or self.side not in SIDES:
            raise LabelsError(f"side must be one of {', '.join(SIDES)}")
        if self.structure is not None:
            if not isinstance(self.structure, str) or self.structure.casefold() not in _STRUCTURE_BY_FOLDED:
                raise LabelsError(f"structure must be one of {', '.join(STRUCTURES)}")
            object.__setattr__(self, "structure", _STRUCTURE_BY_FOLDED[self.structure.casefold()])
        if self.plane is not None and (not isinstance(self.plane, str) or self.plane not in PLANES):
            raise LabelsError(f"plane must be one of {', '.join(PLANES)}")
        if not isinstance(self.mode, str) or self.mode not in MODES:
            raise LabelsError(f"mode must be one of {', '.join(MODES)}")
        angle = self.doppler_angle
        if angle is not None:
            if isinstance(angle, bool) or not isinstance(angle, int | float) or not math.isfinite(angle):
                raise LabelsError("doppler_angle must be a finite number of degrees")
            if not -MAX_DOPPLER_ANGLE <= angle <= MAX_DOPPLER_ANGLE:
                raise LabelsError(f"doppler_angle must be within ±{MAX_DOPPLER_ANGLE:g} degrees")
            if self.mode not in DOPPLER_MODES:
                raise LabelsError("doppler_angle needs a Doppler mode")
            object.__setattr__(self, "doppler_angle", float(angle))

    @property
    def mode_bitmap(self) -> str:
        """Image Type value 4 for this mode."""
        return MODES[self.mode]

    @property
    def has_colour_flow(self) -> bool:
        return self.mode in COLOUR_MODES

    def describe(self) -> str:
        """A short human summary, e.g. ``"R, CCA, longitudinal, triplex, Doppler angle 60°"``."""
        parts = [self.side] if self.side != "none" else []
        parts += [p for p in (self.structure, self.plane) if p]
        parts.append(MODE_NAMES[self.mode])
        if self.doppler_angle is not None:
            parts.append(f"Doppler angle {self.doppler_angle:g}°")
        return ", ".join(parts)

    @classmethod
    def from_dict(cls, data: Any) -> CaptureLabels:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise LabelsError("labels must be a JSON object")
        unknown = set(data) - {"side", "structure", "plane", "mode", "doppler_angle"}
        if unknown:
            raise LabelsError(f"unknown label field {sorted(unknown)[0]!r}")
        side = data.get("side")
        return cls(
            side="none" if side is None else side,
            structure=data.get("structure"),
            plane=data.get("plane"),
            mode=data.get("mode", "b_mode"),
            doppler_angle=data.get("doppler_angle"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "structure": self.structure,
            "plane": self.plane,
            "mode": self.mode,
            "doppler_angle": self.doppler_angle,
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> CaptureLabels:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise LabelsError("labels are not JSON text") from None
        return cls.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)
