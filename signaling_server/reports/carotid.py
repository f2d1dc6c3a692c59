"""SRU carotid stenosis grading per side (Grant et al., Radiology 2003;229:340-346; CLINICAL.md §2), pure.

The rules, first match wins:
1. Doppler angle > 60° → not graded, flagged: velocities measured at such an angle are unreliable (SRU: ≤ 60°).
   Exactly 60° is graded.
2. No flow → total occlusion.
3. Markedly narrowed lumen → near occlusion (velocities are variable there and do not grade it).
4. No ICA PSV → not graded: PSV is the primary criterion.
5. ICA PSV: < 125 cm/s → normal without plaque, < 50 % with plaque; 125–230 → 50–69 %; > 230 → ≥ 70 %.
   Both ends of the middle band are inclusive (125 and 230 are 50–69 %), and so are those of the secondary
   criteria: ICA/CCA ratio < 2.0 / 2.0–4.0 / > 4.0 and ICA EDV < 40 / 40–100 / > 100 cm/s. A ratio, EDV or plaque
   category that points to another band than PSV adds a "Discordant" note and flag; the grade stays on PSV.

IMT (Mannheim consensus, CLINICAL.md §2): < 1.0 mm normal, ≥ 1.0 mm thickened, ≥ 1.5 mm plaque by default, the
cut-offs common in Chinese health-check practice; `ImtThresholds` makes them configurable (Mannheim itself calls
> 1.5 mm plaque, and normal IMT depends on age and sex).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from signaling_server.errors import InvalidRequest
from signaling_server.reports import fields

MAX_ANGLE_DEG = 60.0


class Side(StrEnum):
    RIGHT = "right"
    LEFT = "left"


class Plaque(StrEnum):
    NONE = "none"
    VISIBLE = "visible"
    LUMEN_NARROWED = "lumen_narrowed"
    MARKEDLY_NARROWED = "markedly_narrowed"


class Flow(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"


class VertebralFlow(StrEnum):
    ANTEGRADE = "antegrade"
    RETROGRADE = "retrograde"
    ABSENT = "absent"


class Grade(StrEnum):
    NORMAL = "normal"
    LESS_THAN_50 = "lt50"
    FROM_50_TO_69 = "50_69"
    AT_LEAST_70 = "ge70"
    NEAR_OCCLUSION = "near_occlusion"
    TOTAL_OCCLUSION = "total_occlusion"
    NOT_GRADED = "not_graded"


GRADE_LABELS: Mapping[Grade, str] = {
    Grade.NORMAL: "Normal (no stenosis)",
    Grade.LESS_THAN_50: "< 50 % stenosis",
    Grade.FROM_50_TO_69: "50–69 % stenosis",
    Grade.AT_LEAST_70: "≥ 70 % stenosis to near occlusion",
    Grade.NEAR_OCCLUSION: "Near occlusion",
    Grade.TOTAL_OCCLUSION: "Total occlusion",
    Grade.NOT_GRADED: "Not graded",
}
PLAQUE_LABELS: Mapping[Plaque, str] = {
    Plaque.NONE: "No plaque",
    Plaque.VISIBLE: "Plaque visible",
    Plaque.LUMEN_NARROWED: "Plaque, lumen narrowed",
    Plaque.MARKEDLY_NARROWED: "Plaque, lumen markedly narrowed",
}


class Flag(StrEnum):
    ANGLE_OVER_60 = "angle_over_60"
    ANGLE_NOT_RECORDED = "angle_not_recorded"
    PSV_MISSING = "psv_missing"
    DISCORDANT_RATIO = "discordant_ratio"
    DISCORDANT_EDV = "discordant_edv"
    DISCORDANT_PLAQUE = "discordant_plaque"


class ImtClass(StrEnum):
    NORMAL = "normal"
    THICKENED = "thickened"
    PLAQUE = "plaque"


@dataclass(frozen=True)
class ImtThresholds:
    """IMT cut-offs in mm, both compared with ≥."""

    thickening_mm: float = 1.0
    plaque_mm: float = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.thickening_mm < self.plaque_mm <= 10:
            raise ValueError("IMT thresholds need 0 < thickening_mm < plaque_mm ≤ 10")

    def classify(self, imt_mm: float) -> ImtClass:
        if imt_mm >= self.plaque_mm:
            return ImtClass.PLAQUE
        return ImtClass.THICKENED if imt_mm >= self.thickening_mm else ImtClass.NORMAL


DEFAULT_IMT = ImtThresholds()

# Bands of the SRU table shared by every velocity criterion: below 50 %, 50–69 %, 70 % or more.
_BELOW_50, _MODERATE, _SEVERE = "< 50 %", "50–69 %", "≥ 70 %"


def _band(value: float, low: float, high: float) -> str:
    if value < low:
        return _BELOW_50
    return _MODERATE if value <= high else _SEVERE


def psv_band(psv: float) -> str:
    return _band(psv, 125.0, 230.0)


def ratio_band(ratio: float) -> str:
    return _band(ratio, 2.0, 4.0)


def edv_band(edv: float) -> str:
    return _band(edv, 40.0, 100.0)


# Which velocity bands each plaque category fits; "visible" fits all three.
_PLAQUE_FITS = {
    Plaque.NONE: {_BELOW_50},
    Plaque.VISIBLE: {_BELOW_50, _MODERATE, _SEVERE},
    Plaque.LUMEN_NARROWED: {_SEVERE},
}

# field: (lowest, lowest allowed itself, highest, unit)
_RANGES: Mapping[str, tuple[float, bool, float, str]] = {
    "ica_psv_cm_s": (0, False, 1000, " cm/s"),
    "ica_edv_cm_s": (0, True, 1000, " cm/s"),
    "cca_psv_cm_s": (0, False, 1000, " cm/s"),
    "eca_psv_cm_s": (0, False, 1000, " cm/s"),
    "ica_cca_ratio": (0, False, 50, ""),
    "doppler_angle_deg": (0, True, 90, "°"),
    "imt_mm": (0, False, 10, " mm"),
}


@dataclass(frozen=True)
class CarotidSide:
    """What was measured on one side: ICA velocities in cm/s, angle in degrees, IMT in mm; None = not measured."""

    side: Side
    plaque: Plaque
    flow: Flow
    ica_psv_cm_s: float | None = None
    ica_edv_cm_s: float | None = None
    cca_psv_cm_s: float | None = None
    ica_cca_ratio: float | None = None
    doppler_angle_deg: float | None = None
    imt_mm: float | None = None
    eca_psv_cm_s: float | None = None
    vertebral_flow: VertebralFlow | None = None

    def __post_init__(self) -> None:
        for name, (low, low_allowed, high, unit) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not (low <= value <= high and (low_allowed or value > low)):
                sign = "≥" if low_allowed else ">"
                raise InvalidRequest(f"{name} must be {sign} {low:g}{unit} and ≤ {high:g}{unit}, got {value!r}")
        for name in ("ica_psv_cm_s", "ica_edv_cm_s"):
            if self.flow is Flow.ABSENT and getattr(self, name):
                raise InvalidRequest(f"{name}: ICA flow is absent, so no ICA velocity can be recorded")
        if self.ica_psv_cm_s is not None and self.ica_edv_cm_s is not None and self.ica_edv_cm_s > self.ica_psv_cm_s:
            raise InvalidRequest("ica_edv_cm_s must not exceed ica_psv_cm_s")

    @classmethod
    def from_json(cls, data: object, where: str = "") -> CarotidSide:
        body = fields.json_object(data, where, {"side", "plaque", "flow", "vertebral_flow", *_RANGES})
        vertebral = body.get("vertebral_flow")
        try:
            return cls(
                side=fields.choice(Side, body.get("side"), f"{where}side"),
                plaque=fields.choice(Plaque, body.get("plaque"), f"{where}plaque"),
                flow=fields.choice(Flow, body.get("flow"), f"{where}flow"),
                vertebral_flow=(
                    None if vertebral is None else fields.choice(VertebralFlow, vertebral, f"{where}vertebral_flow")
                ),
                **{name: fields.optional_number(body, name, where) for name in _RANGES},
            )
        except InvalidRequest as error:
            if error.message.startswith(where):
                raise
            raise InvalidRequest(where + error.message) from None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"side": self.side.value, "plaque": self.plaque.value, "flow": self.flow.value}
        body.update({name: getattr(self, name) for name in _RANGES})
        body["vertebral_flow"] = None if self.vertebral_flow is None else self.vertebral_flow.value
        return body

    @property
    def ratio(self) -> float | None:
        """The ICA/CCA PSV ratio used for grading: as entered, else computed from the two PSVs."""
        if self.ica_cca_ratio is not None:
            return self.ica_cca_ratio
        if self.ica_psv_cm_s is not None and self.cca_psv_cm_s:
            return self.ica_psv_cm_s / self.cca_psv_cm_s
        return None


@dataclass(frozen=True)
class SideGrade:
    findings: CarotidSide
    grade: Grade
    imt_class: ImtClass | None
    flags: tuple[Flag, ...]
    notes: tuple[str, ...]

    @property
    def side(self) -> Side:
        return self.findings.side

    @property
    def grade_label(self) -> str:
        return GRADE_LABELS[self.grade]

    def to_json(self) -> dict[str, Any]:
        ratio = self.findings.ratio
        return {
            "side": self.side.value,
            "findings": self.findings.to_json(),
            "grade": self.grade.value,
            "grade_label": self.grade_label,
            "ratio": None if ratio is None else round(ratio, 2),
            "imt_class": None if self.imt_class is None else self.imt_class.value,
            "flags": [f.value for f in self.flags],
            "notes": list(self.notes),
        }


def grade_side(side: CarotidSide, imt: ImtThresholds = DEFAULT_IMT) -> SideGrade:
    """Grade one side by the SRU consensus (rules in the module docstring)."""
    flags: list[Flag] = []
    notes: list[str] = []
    imt_class = None if side.imt_mm is None else imt.classify(side.imt_mm)
    if imt_class is not None:
        notes.append(_imt_note(side.imt_mm or 0.0, imt_class, imt))
    angle = side.doppler_angle_deg
    if angle is not None and angle > MAX_ANGLE_DEG:
        flags.append(Flag.ANGLE_OVER_60)
        notes.insert(
            0,
            f"Doppler angle {angle:g}° > 60°: velocities at this angle are unreliable, so this side is "
            "not graded (SRU: angle ≤ 60°); repeat the measurement at ≤ 60°",
        )
        return SideGrade(side, Grade.NOT_GRADED, imt_class, tuple(flags), tuple(notes))
    if angle is None and side.ica_psv_cm_s is not None:
        flags.append(Flag.ANGLE_NOT_RECORDED)
        notes.append("Doppler angle not recorded: velocities taken as angle-corrected at ≤ 60°")
    grade = _grade(side, flags, notes)
    return SideGrade(side, grade, imt_class, tuple(flags), tuple(notes))


def _grade(side: CarotidSide, flags: list[Flag], notes: list[str]) -> Grade:
    if side.flow is Flow.ABSENT:
        notes.append("No ICA flow: total occlusion (near occlusion can mimic it; confirm at low flow settings)")
        return Grade.TOTAL_OCCLUSION
    if side.plaque is Plaque.MARKEDLY_NARROWED:
        notes.append("Markedly narrowed lumen: near occlusion; velocities are variable there and do not grade it")
        return Grade.NEAR_OCCLUSION
    psv = side.ica_psv_cm_s
    if psv is None:
        flags.append(Flag.PSV_MISSING)
        notes.append("ICA PSV not recorded: not graded (PSV is the primary criterion)")
        return Grade.NOT_GRADED
    band = psv_band(psv)
    grade = {_MODERATE: Grade.FROM_50_TO_69, _SEVERE: Grade.AT_LEAST_70}.get(band)
    if grade is None:
        grade = Grade.NORMAL if side.plaque is Plaque.NONE else Grade.LESS_THAN_50
    graded = f"PSV {psv:g} cm/s grades {band}; graded on PSV (primary)"
    ratio = side.ratio
    if ratio is not None:
        if side.ica_cca_ratio is None:
            notes.append(f"ICA/CCA ratio {ratio:.2f} computed from ICA PSV / CCA PSV")
        if ratio_band(ratio) != band:
            flags.append(Flag.DISCORDANT_RATIO)
            notes.append(f"Discordant: ICA/CCA ratio {ratio:.2f} suggests {ratio_band(ratio)}, but {graded}")
    if side.ica_edv_cm_s is not None and edv_band(side.ica_edv_cm_s) != band:
        flags.append(Flag.DISCORDANT_EDV)
        edv = side.ica_edv_cm_s
        notes.append(f"Discordant: ICA EDV {edv:g} cm/s suggests {edv_band(edv)}, but {graded}")
    if band not in _PLAQUE_FITS[side.plaque]:
        flags.append(Flag.DISCORDANT_PLAQUE)
        notes.append(f"Discordant: '{PLAQUE_LABELS[side.plaque]}' does not fit {band}; {graded}")
    return grade


def _mm(value: float) -> str:
    """1.0 → "1.0", 1.25 → "1.25": at least one decimal, never rounded across a threshold."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _imt_note(imt_mm: float, imt_class: ImtClass, imt: ImtThresholds) -> str:
    if imt_class is ImtClass.PLAQUE:
        return f"IMT {_mm(imt_mm)} mm: plaque (≥ {_mm(imt.plaque_mm)} mm)"
    if imt_class is ImtClass.THICKENED:
        return f"IMT {_mm(imt_mm)} mm: thickened (≥ {_mm(imt.thickening_mm)} mm)"
    return f"IMT {_mm(imt_mm)} mm: normal (< {_mm(imt.thickening_mm)} mm)"


@dataclass(frozen=True)
class CarotidFindings:
    """A carotid exam: each side that was examined (both, for a complete exam) and a free comment."""

    right: CarotidSide | None = None
    left: CarotidSide | None = None
    comment: str = ""

    def __post_init__(self) -> None:
        if self.right is None and self.left is None:
            raise InvalidRequest("right or left: at least one side is required")
        for expected, found in ((Side.RIGHT, self.right), (Side.LEFT, self.left)):
            if found is not None and found.side is not expected:
                raise InvalidRequest(f"{expected}.side must be {expected}")

    @property
    def sides(self) -> tuple[CarotidSide, ...]:
        return tuple(s for s in (self.right, self.left) if s is not None)

    @classmethod
    def from_json(cls, data: object) -> CarotidFindings:
        body = fields.json_object(data, "", {"right", "left", "comment"})
        sides: dict[str, CarotidSide | None] = {}
        for name in ("right", "left"):
            raw = body.get(name)
            if raw is not None:
                raw = {
                    "side": name,
                    **fields.json_object(raw, f"{name}.", {"side", "plaque", "flow", "vertebral_flow", *_RANGES}),
                }
            sides[name] = None if raw is None else CarotidSide.from_json(raw, f"{name}.")
        comment = body.get("comment", "")
        if not isinstance(comment, str) or len(comment) > 10_000:
            raise InvalidRequest("comment must be text of at most 10000 characters")
        return cls(sides["right"], sides["left"], comment)

    def to_json(self) -> dict[str, Any]:
        return {
            "right": None if self.right is None else self.right.to_json(),
            "left": None if self.left is None else self.left.to_json(),
            "comment": self.comment,
        }


@dataclass(frozen=True)
class CarotidResult:
    sides: tuple[SideGrade, ...]

    def to_json(self) -> dict[str, Any]:
        return {"sides": [s.to_json() for s in self.sides]}


def grade_exam(findings: CarotidFindings, imt: ImtThresholds = DEFAULT_IMT) -> CarotidResult:
    return CarotidResult(tuple(grade_side(side, imt) for side in findings.sides))
