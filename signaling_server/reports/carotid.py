"""SRU carotid stenosis grading per side (Grant et al., Radiology 2003;229:340-346; CLINICAL.md §2), pure.

The rules, first match wins:
1. Doppler angle > 60° → not graded, flagged: velocities measured at such an angle are unreliable (SRU: ≤ 60°).
   Exactly 60° is graded. If flow is absent or the lumen markedly narrowed, "suspected occlusion, confirm" is
   flagged as well: a steep angle must not hide it.
2. No flow → total occlusion.
3. Markedly narrowed lumen → near occlusion (velocities are variable there and do not grade it).
4. No ICA PSV → not graded: PSV is the primary criterion. A PSV of 0 is "undetectable", a valid entry: with flow
   present it is not graded on PSV and flagged.
5. ICA PSV: < 125 cm/s → normal without plaque and without intimal thickening (IMT below the thickening cut-off or
   not measured), < 50 % otherwise; 125–230 → 50–69 %; > 230 → ≥ 70 %.
   Both ends of the middle band are inclusive (125 and 230 are 50–69 %), and so are those of the secondary
   criteria: ICA/CCA ratio < 2.0 / 2.0–4.0 / > 4.0 and ICA EDV < 40 / 40–100 / > 100 cm/s. A ratio, EDV or plaque
   category that points to another band than PSV adds a "Discordant" note and flag; the grade stays on PSV.
   "Lumen narrowed" (≥ 50 % diameter reduction) fits both 50–69 % and ≥ 70 %.

Contradictions flagged (never refused, never silently graded): IMT in the plaque range with plaque "none"; a
ratio entered with absent flow; an entered ratio further than 0.1 (or 5 %) from ICA PSV / CCA PSV. Warnings the
reader confirms before signing (content.py): a missing Doppler angle with velocities, a detectable PSV under
10 cm/s (m/s typed in a cm/s field?). Numbers in notes never round across a threshold (numbers.py).

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
from signaling_server.reports.numbers import shown
from signaling_server.reports.wording import Note, english, messages, note

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
    """Findings the reader must see next to the grade (catalog `clinical.flag.<code>`)."""

    ANGLE_OVER_60 = "angle_over_60"
    ANGLE_NOT_RECORDED = "angle_not_recorded"
    PSV_MISSING = "psv_missing"
    PSV_UNDETECTABLE = "psv_undetectable"  # flow present but no measurable PSV: not graded on PSV
    DISCORDANT_RATIO = "discordant_ratio"
    DISCORDANT_EDV = "discordant_edv"
    DISCORDANT_PLAQUE = "discordant_plaque"
    SUSPECTED_OCCLUSION = "suspected_occlusion"  # not graded (angle > 60°) but no flow or a markedly narrowed lumen
    IMT_PLAQUE_WITHOUT_PLAQUE = "imt_plaque_without_plaque"  # IMT in the plaque range, plaque "none"
    RATIO_WITH_ABSENT_FLOW = "ratio_with_absent_flow"
    RATIO_DISAGREES_WITH_VELOCITIES = "ratio_disagrees_with_velocities"


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


# Which velocity bands each plaque category fits; "visible" fits all three. "Lumen narrowed" is the SRU's ≥ 50 %
# diameter reduction, which 50–69 % and ≥ 70 % share: grey-scale cannot tell those two apart.
_PLAQUE_FITS = {
    Plaque.NONE: {_BELOW_50},
    Plaque.VISIBLE: {_BELOW_50, _MODERATE, _SEVERE},
    Plaque.LUMEN_NARROWED: {_MODERATE, _SEVERE},
}
PSV_LIMITS, RATIO_LIMITS, EDV_LIMITS = (125.0, 230.0), (2.0, 4.0), (40.0, 100.0)
LIKELY_M_S_BELOW = 10.0  # a PSV under 10 cm/s (but detectable) was probably typed in m/s
RATIO_TOLERANCE = 0.1  # an entered ratio further than this (or 5 %) from ICA PSV / CCA PSV disagrees with them
_PSV_FIELDS = ("ica_psv_cm_s", "cca_psv_cm_s", "eca_psv_cm_s")

# field: (lowest, lowest allowed itself, highest, unit). A velocity of 0 is "undetectable", a valid entry.
_RANGES: Mapping[str, tuple[float, bool, float, str]] = {
    "ica_psv_cm_s": (0, True, 1000, " cm/s"),
    "ica_edv_cm_s": (0, True, 1000, " cm/s"),
    "cca_psv_cm_s": (0, True, 1000, " cm/s"),
    "eca_psv_cm_s": (0, True, 1000, " cm/s"),
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
        return self.computed_ratio

    @property
    def computed_ratio(self) -> float | None:
        """ICA PSV / CCA PSV when both were measured (and flow was)."""
        if self.flow is Flow.PRESENT and self.ica_psv_cm_s is not None and self.cca_psv_cm_s:
            return self.ica_psv_cm_s / self.cca_psv_cm_s
        return None


@dataclass(frozen=True)
class SideGrade:
    findings: CarotidSide
    grade: Grade
    imt_class: ImtClass | None
    flags: tuple[Flag, ...]
    notes: tuple[Note, ...]
    warnings: tuple[Note, ...] = ()  # likely slips the reader confirms (content.py); `where` is the side

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
            "ratio": None if ratio is None else float(shown(ratio, RATIO_LIMITS)),
            "ratio_text": None if ratio is None else shown(ratio, RATIO_LIMITS),
            "imt_class": None if self.imt_class is None else self.imt_class.value,
            "flags": [f.value for f in self.flags],
            "notes": english(self.notes),
            "messages": messages(self.notes),
        }


def grade_side(side: CarotidSide, imt: ImtThresholds = DEFAULT_IMT) -> SideGrade:
    """Grade one side by the SRU consensus (rules in the module docstring)."""
    flags: list[Flag] = []
    notes: list[Note] = []
    imt_class = None if side.imt_mm is None else imt.classify(side.imt_mm)
    if imt_class is not None:
        notes.append(_imt_note(side.imt_mm or 0.0, imt_class, imt))
    if imt_class is ImtClass.PLAQUE and side.plaque is Plaque.NONE:
        flags.append(Flag.IMT_PLAQUE_WITHOUT_PLAQUE)
        notes.append(note("carotid.imt_plaque_without_plaque"))
    _check_ratio(side, flags, notes)
    warnings = _unit_warnings(side)
    angle = side.doppler_angle_deg
    if angle is not None and angle > MAX_ANGLE_DEG:
        flags.insert(0, Flag.ANGLE_OVER_60)
        notes.insert(0, note("carotid.angle_over_60", angle=shown(angle, (MAX_ANGLE_DEG,), decimals=1)))
        if side.flow is Flow.ABSENT or side.plaque is Plaque.MARKEDLY_NARROWED:
            flags.insert(1, Flag.SUSPECTED_OCCLUSION)
            notes.insert(1, note("carotid.suspected_occlusion"))
        return SideGrade(side, Grade.NOT_GRADED, imt_class, tuple(flags), tuple(notes), warnings)
    if angle is None and side.ica_psv_cm_s:
        flags.append(Flag.ANGLE_NOT_RECORDED)
        notes.append(note("carotid.angle_not_recorded"))
        warnings = (note("warning.angle_missing", side_term=f"side.{side.side.value}"), *warnings)
    grade = _grade(side, imt_class, flags, notes)
    return SideGrade(side, grade, imt_class, tuple(flags), tuple(notes), warnings)


def _check_ratio(side: CarotidSide, flags: list[Flag], notes: list[Note]) -> None:
    entered = side.ica_cca_ratio
    if entered is None:
        return
    if side.flow is Flow.ABSENT:
        flags.append(Flag.RATIO_WITH_ABSENT_FLOW)
        notes.append(note("carotid.ratio_with_absent_flow", ratio=shown(entered, RATIO_LIMITS)))
        return
    computed = side.computed_ratio
    if computed is not None and abs(entered - computed) > max(RATIO_TOLERANCE, 0.05 * computed) + 1e-9:
        flags.append(Flag.RATIO_DISAGREES_WITH_VELOCITIES)
        notes.append(
            note(
                "carotid.ratio_disagrees",
                ratio=shown(entered, RATIO_LIMITS),
                computed=shown(computed, RATIO_LIMITS),
                ica=shown(side.ica_psv_cm_s or 0.0, PSV_LIMITS, decimals=1),
                cca=shown(side.cca_psv_cm_s or 0.0, (), decimals=1),
            )
        )


def _unit_warnings(side: CarotidSide) -> tuple[Note, ...]:
    """A detectable PSV under 10 cm/s was probably entered in m/s: the reader confirms it (never refused)."""
    return tuple(
        note(
            f"warning.psv_unit.{name}",
            side_term=f"side.{side.side.value}",
            value=shown(value, (LIKELY_M_S_BELOW,), decimals=2),
        )
        for name in _PSV_FIELDS
        if (value := getattr(side, name)) is not None and 0 < value < LIKELY_M_S_BELOW
    )


def _grade(side: CarotidSide, imt_class: ImtClass | None, flags: list[Flag], notes: list[Note]) -> Grade:
    if side.flow is Flow.ABSENT:
        notes.append(note("carotid.total_occlusion"))
        return Grade.TOTAL_OCCLUSION
    if side.plaque is Plaque.MARKEDLY_NARROWED:
        notes.append(note("carotid.near_occlusion"))
        return Grade.NEAR_OCCLUSION
    psv = side.ica_psv_cm_s
    if psv is None:
        flags.append(Flag.PSV_MISSING)
        notes.append(note("carotid.psv_missing"))
        return Grade.NOT_GRADED
    if psv == 0:
        flags.append(Flag.PSV_UNDETECTABLE)
        notes.append(note("carotid.psv_undetectable"))
        return Grade.NOT_GRADED
    band = psv_band(psv)
    grade = {_MODERATE: Grade.FROM_50_TO_69, _SEVERE: Grade.AT_LEAST_70}.get(band)
    if grade is None:
        # normal needs no plaque AND no intimal thickening (SRU): a thickened IMT is < 50 %, never normal
        no_plaque = side.plaque is Plaque.NONE
        grade = Grade.NORMAL if no_plaque and imt_class in (None, ImtClass.NORMAL) else Grade.LESS_THAN_50
        if grade is Grade.LESS_THAN_50 and no_plaque:
            notes.append(note("carotid.not_normal_imt"))
    psv_text = shown(psv, PSV_LIMITS, decimals=1)
    graded = {"psv": psv_text, "band": band}  # bands are written in symbols, the same in every language
    ratio = side.ratio
    if ratio is not None:
        ratio_text = shown(ratio, RATIO_LIMITS)
        if side.ica_cca_ratio is None:
            notes.append(note("carotid.ratio_computed", ratio=ratio_text))
        if ratio_band(ratio) != band:
            flags.append(Flag.DISCORDANT_RATIO)
            notes.append(note("carotid.discordant_ratio", ratio=ratio_text, suggests=ratio_band(ratio), **graded))
    if side.ica_edv_cm_s is not None and edv_band(side.ica_edv_cm_s) != band:
        flags.append(Flag.DISCORDANT_EDV)
        edv = shown(side.ica_edv_cm_s, EDV_LIMITS, decimals=1)
        notes.append(note("carotid.discordant_edv", edv=edv, suggests=edv_band(side.ica_edv_cm_s), **graded))
    if band not in _PLAQUE_FITS[side.plaque]:
        flags.append(Flag.DISCORDANT_PLAQUE)
        notes.append(note(f"carotid.discordant_plaque.{side.plaque.value}", **graded))
    return grade


def _mm(value: float, thresholds: tuple[float, ...]) -> str:
    """1.0 → "1.0", 1.25 → "1.25", 1.4999 → "1.4999": never rounded across a threshold."""
    return shown(value, thresholds, decimals=2, least=1)


def _imt_note(imt_mm: float, imt_class: ImtClass, imt: ImtThresholds) -> Note:
    limits = (imt.thickening_mm, imt.plaque_mm)
    value = _mm(imt_mm, limits)
    if imt_class is ImtClass.PLAQUE:
        return note("carotid.imt_plaque", imt=value, threshold=_mm(imt.plaque_mm, ()))
    if imt_class is ImtClass.THICKENED:
        return note("carotid.imt_thickened", imt=value, threshold=_mm(imt.thickening_mm, ()))
    return note("carotid.imt_normal", imt=value, threshold=_mm(imt.thickening_mm, ()))


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
