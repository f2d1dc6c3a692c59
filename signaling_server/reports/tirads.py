"""ACR TI-RADS (Tessler et al., J Am Coll Radiol 2017;14:587-595; CLINICAL.md §1) as pure functions.

A nodule is five category choices and three diameters. `ACR_TIRADS.score(nodule)` gives the points, the TR level
and the size-based advice; `score_exam(findings)` adds the exam-level rules (at most four nodules reported, FNA for
at most two). The scoring system is pluggable (`ScoringSystem`) so C-TIRADS can sit beside ACR later.

Decisions the chart leaves open, made here once:
- A total of exactly 1 point is not in the chart: reported as TR2 by default, configurable to TR1 with
  `AcrTiRads(one_point_level=TRLevel.TR1)`, and always said in a note.
- "Cannot be judged" scores as the paper says: composition 2 (obscured by calcification), echogenicity 1, margin 0.
- A spongiform nodule scores 0 in every other category, so the counted points always add up to the total.
- Size thresholds are "≥" and compare the largest of the three diameters, in cm.
- FNA goes to at most two of the reported nodules, chosen by `SELECTION_RULE`; another nodule that meets its FNA
  size gets follow-up instead, with a note. Nodules beyond the four reported are counted in a note, never dropped
  silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from signaling_server.errors import InvalidRequest
from signaling_server.reports import fields

MAX_DIAMETER_MM = 150.0
MAX_NODULES = 50
MAX_REPORTED = 4
MAX_FNA = 2
SELECTION_RULE = "highest point total (so highest TR level) first, then largest diameter, then order of entry"


class Composition(StrEnum):
    CYSTIC = "cystic"
    SPONGIFORM = "spongiform"
    MIXED_CYSTIC_SOLID = "mixed_cystic_solid"
    SOLID = "solid"
    CANNOT_DETERMINE = "cannot_determine"


class Echogenicity(StrEnum):
    ANECHOIC = "anechoic"
    HYPER_OR_ISOECHOIC = "hyper_or_isoechoic"
    HYPOECHOIC = "hypoechoic"
    VERY_HYPOECHOIC = "very_hypoechoic"
    CANNOT_DETERMINE = "cannot_determine"


class Shape(StrEnum):
    WIDER_THAN_TALL = "wider_than_tall"
    TALLER_THAN_WIDE = "taller_than_wide"


class Margin(StrEnum):
    SMOOTH = "smooth"
    ILL_DEFINED = "ill_defined"
    LOBULATED_OR_IRREGULAR = "lobulated_or_irregular"
    EXTRATHYROIDAL_EXTENSION = "extrathyroidal_extension"
    CANNOT_DETERMINE = "cannot_determine"


class EchogenicFocus(StrEnum):
    NONE_OR_COMET_TAIL = "none_or_comet_tail"
    MACROCALCIFICATIONS = "macrocalcifications"
    PERIPHERAL_CALCIFICATIONS = "peripheral_calcifications"
    PUNCTATE = "punctate_echogenic_foci"


Choice = Composition | Echogenicity | Shape | Margin | EchogenicFocus

# The ACR chart: (points, label) of every choice.
CHART: Mapping[type[StrEnum], Mapping[Any, tuple[int, str]]] = {
    Composition: {
        Composition.CYSTIC: (0, "Cystic or almost completely cystic"),
        Composition.SPONGIFORM: (0, "Spongiform"),
        Composition.MIXED_CYSTIC_SOLID: (1, "Mixed cystic and solid"),
        Composition.SOLID: (2, "Solid or almost completely solid"),
        Composition.CANNOT_DETERMINE: (2, "Cannot be determined (calcification)"),
    },
    Echogenicity: {
        Echogenicity.ANECHOIC: (0, "Anechoic"),
        Echogenicity.HYPER_OR_ISOECHOIC: (1, "Hyperechoic or isoechoic"),
        Echogenicity.HYPOECHOIC: (2, "Hypoechoic"),
        Echogenicity.VERY_HYPOECHOIC: (3, "Very hypoechoic"),
        Echogenicity.CANNOT_DETERMINE: (1, "Cannot be determined"),
    },
    Shape: {Shape.WIDER_THAN_TALL: (0, "Wider-than-tall"), Shape.TALLER_THAN_WIDE: (3, "Taller-than-wide")},
    Margin: {
        Margin.SMOOTH: (0, "Smooth"),
        Margin.ILL_DEFINED: (0, "Ill-defined"),
        Margin.LOBULATED_OR_IRREGULAR: (2, "Lobulated or irregular"),
        Margin.EXTRATHYROIDAL_EXTENSION: (3, "Extra-thyroidal extension"),
        Margin.CANNOT_DETERMINE: (0, "Cannot be determined"),
    },
    EchogenicFocus: {
        EchogenicFocus.NONE_OR_COMET_TAIL: (0, "None or large comet-tail artifacts"),
        EchogenicFocus.MACROCALCIFICATIONS: (1, "Macrocalcifications"),
        EchogenicFocus.PERIPHERAL_CALCIFICATIONS: (2, "Peripheral (rim) calcifications"),
        EchogenicFocus.PUNCTATE: (3, "Punctate echogenic foci"),
    },
}


def points(choice: Choice) -> int:
    return CHART[type(choice)][choice][0]


def label(choice: Choice) -> str:
    return CHART[type(choice)][choice][1]


class TRLevel(StrEnum):
    TR1 = "TR1"
    TR2 = "TR2"
    TR3 = "TR3"
    TR4 = "TR4"
    TR5 = "TR5"


@dataclass(frozen=True)
class LevelRule:
    """One row of the ACR chart: FNA and follow-up size thresholds (cm, compared with ≥) and the schedule."""

    label: str
    fna_cm: float | None
    follow_up_cm: float | None
    follow_up_schedule: str


ACR_LEVELS: Mapping[TRLevel, LevelRule] = {
    TRLevel.TR1: LevelRule("TR1 benign", None, None, ""),
    TRLevel.TR2: LevelRule("TR2 not suspicious", None, None, ""),
    TRLevel.TR3: LevelRule("TR3 mildly suspicious", 2.5, 1.5, "ultrasound at 1, 3 and 5 years"),
    TRLevel.TR4: LevelRule("TR4 moderately suspicious", 1.5, 1.0, "ultrasound at 1, 2, 3 and 5 years"),
    TRLevel.TR5: LevelRule("TR5 highly suspicious", 1.0, 0.5, "ultrasound every year for up to 5 years"),
}


def _foci(value: object, name: str) -> frozenset[EchogenicFocus]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{name} must be a list of choices")
    return frozenset(fields.choice(EchogenicFocus, item, name) for item in value)


def _fmt(value: float) -> str:
    """1.5 → "1.5", 1.0 → "1.0", 1.495 → "1.495": never rounds a value across a threshold."""
    text = f"{value:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


_DIAMETERS = ("max_axial_mm", "perpendicular_axial_mm", "craniocaudal_mm")
_NODULE_FIELDS = {"composition", "echogenicity", "shape", "margin", "echogenic_foci", "location", *_DIAMETERS}


@dataclass(frozen=True)
class Nodule:
    """One thyroid nodule as the sonographer judged it; diameters in mm."""

    composition: Composition
    echogenicity: Echogenicity
    shape: Shape
    margin: Margin
    echogenic_foci: frozenset[EchogenicFocus]
    max_axial_mm: float
    perpendicular_axial_mm: float
    craniocaudal_mm: float
    location: str = ""

    def __post_init__(self) -> None:
        if not self.echogenic_foci:
            raise InvalidRequest("echogenic_foci must list at least one choice (none_or_comet_tail when none)")
        for name in _DIAMETERS:
            value = getattr(self, name)
            if not 0 < value <= MAX_DIAMETER_MM:
                raise InvalidRequest(f"{name} must be > 0 and ≤ {MAX_DIAMETER_MM:g} mm, got {value!r}")

    @property
    def largest_mm(self) -> float:
        return max(self.max_axial_mm, self.perpendicular_axial_mm, self.craniocaudal_mm)

    @property
    def largest_cm(self) -> float:
        return round(self.largest_mm / 10, 4)

    @classmethod
    def from_json(cls, data: object, where: str = "") -> Nodule:
        body = fields.json_object(data, where, _NODULE_FIELDS)
        try:
            return cls(
                composition=fields.choice(Composition, body.get("composition"), f"{where}composition"),
                echogenicity=fields.choice(Echogenicity, body.get("echogenicity"), f"{where}echogenicity"),
                shape=fields.choice(Shape, body.get("shape"), f"{where}shape"),
                margin=fields.choice(Margin, body.get("margin"), f"{where}margin"),
                echogenic_foci=_foci(body.get("echogenic_foci"), f"{where}echogenic_foci"),
                max_axial_mm=fields.number(body, "max_axial_mm", where),
                perpendicular_axial_mm=fields.number(body, "perpendicular_axial_mm", where),
                craniocaudal_mm=fields.number(body, "craniocaudal_mm", where),
                location=fields.text(body, "location", where, 64),
            )
        except InvalidRequest as error:
            if error.message.startswith(where):
                raise
            raise InvalidRequest(where + error.message) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "composition": self.composition.value,
            "echogenicity": self.echogenicity.value,
            "shape": self.shape.value,
            "margin": self.margin.value,
            "echogenic_foci": [f.value for f in EchogenicFocus if f in self.echogenic_foci],
            "max_axial_mm": self.max_axial_mm,
            "perpendicular_axial_mm": self.perpendicular_axial_mm,
            "craniocaudal_mm": self.craniocaudal_mm,
        }


@dataclass(frozen=True)
class CategoryPoints:
    composition: int
    echogenicity: int
    shape: int
    margin: int
    echogenic_foci: int

    @property
    def total(self) -> int:
        return self.composition + self.echogenicity + self.shape + self.margin + self.echogenic_foci

    def to_json(self) -> dict[str, int]:
        return {
            "composition": self.composition,
            "echogenicity": self.echogenicity,
            "shape": self.shape,
            "margin": self.margin,
            "echogenic_foci": self.echogenic_foci,
        }


@dataclass(frozen=True)
class NoduleScore:
    """The scored nodule. `follow_up_schedule` is the level's schedule; it applies when follow-up is recommended."""

    nodule: Nodule
    system: str
    points: CategoryPoints
    level: TRLevel
    level_label: str
    fna_recommended: bool
    follow_up_recommended: bool
    follow_up_schedule: str
    notes: tuple[str, ...]
    number: int = 1  # order of entry in the exam, from 1

    @property
    def total(self) -> int:
        return self.points.total

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "nodule": self.nodule.to_json(),
            "system": self.system,
            "points": self.points.to_json(),
            "total": self.total,
            "level": self.level.value,
            "level_label": self.level_label,
            "largest_diameter_cm": self.nodule.largest_cm,
            "fna_recommended": self.fna_recommended,
            "follow_up_recommended": self.follow_up_recommended,
            "follow_up_schedule": self.follow_up_schedule,
            "notes": list(self.notes),
        }


class ScoringSystem(Protocol):
    """A thyroid nodule scoring system (ACR TI-RADS by default; C-TIRADS could be another)."""

    @property
    def name(self) -> str: ...

    def score(self, nodule: Nodule) -> NoduleScore: ...


@dataclass(frozen=True)
class AcrTiRads:
    """ACR TI-RADS 2017. `one_point_level` is the configurable answer for the 1-point total the chart leaves out."""

    one_point_level: TRLevel = TRLevel.TR2
    name: str = "ACR TI-RADS"

    def __post_init__(self) -> None:
        if self.one_point_level not in (TRLevel.TR1, TRLevel.TR2):
            raise ValueError("a 1-point total can only be reported as TR1 or TR2")

    def level(self, total: int) -> TRLevel:
        if total == 0:
            return TRLevel.TR1
        if total == 1:
            return self.one_point_level
        if total == 2:
            return TRLevel.TR2
        if total == 3:
            return TRLevel.TR3
        return TRLevel.TR4 if total <= 6 else TRLevel.TR5

    def score(self, nodule: Nodule) -> NoduleScore:
        notes: list[str] = []
        if nodule.composition is Composition.SPONGIFORM:
            counted = CategoryPoints(0, 0, 0, 0, 0)
            notes.append("spongiform: no further points")
        else:
            counted = CategoryPoints(
                points(nodule.composition),
                points(nodule.echogenicity),
                points(nodule.shape),
                points(nodule.margin),
                sum(points(focus) for focus in nodule.echogenic_foci),
            )
        for name, choice in (
            ("composition", nodule.composition),
            ("echogenicity", nodule.echogenicity),
            ("margin", nodule.margin),
        ):
            if choice.value == "cannot_determine":
                notes.append(f"{name} cannot be determined: scored {points(choice)} point(s) as the ACR chart says")
        level = self.level(counted.total)
        if counted.total == 1:
            notes.append(f"Total of 1 point is not in the ACR chart; reported as {level} (configurable rule)")
        rule = ACR_LEVELS[level]
        fna, follow_up, advice = _size_advice(level, rule, nodule.largest_cm)
        notes.append(advice)
        return NoduleScore(
            nodule, self.name, counted, level, rule.label, fna, follow_up, rule.follow_up_schedule, tuple(notes)
        )


ACR_TIRADS = AcrTiRads()


def _size_advice(level: TRLevel, rule: LevelRule, largest_cm: float) -> tuple[bool, bool, str]:
    """(FNA recommended, follow-up recommended, the sentence saying why)."""
    size = f"largest diameter {_fmt(largest_cm)} cm"
    if rule.fna_cm is None or rule.follow_up_cm is None:
        return False, False, f"{level}: no FNA and no follow-up"
    if largest_cm >= rule.fna_cm:
        return True, False, f"FNA recommended: {size} ≥ {_fmt(rule.fna_cm)} cm ({level})"
    if largest_cm >= rule.follow_up_cm:
        return False, True, f"Follow-up: {size} ≥ {_fmt(rule.follow_up_cm)} cm ({level}): {rule.follow_up_schedule}"
    return False, False, f"No FNA or follow-up: {size} < {_fmt(rule.follow_up_cm)} cm ({level})"


@dataclass(frozen=True)
class ThyroidFindings:
    """What a thyroid report's author enters: the nodules in order of entry and a free comment."""

    nodules: tuple[Nodule, ...] = ()
    comment: str = ""

    @classmethod
    def from_json(cls, data: object) -> ThyroidFindings:
        body = fields.json_object(data, "", {"nodules", "comment"})
        nodules = body.get("nodules", [])
        if not isinstance(nodules, list) or len(nodules) > MAX_NODULES:
            raise InvalidRequest(f"nodules must be a list of at most {MAX_NODULES} nodules")
        parsed = tuple(Nodule.from_json(item, f"nodules[{i}].") for i, item in enumerate(nodules))
        return cls(parsed, fields.text(body, "comment", "", 10_000))

    def to_json(self) -> dict[str, Any]:
        return {"nodules": [n.to_json() for n in self.nodules], "comment": self.comment}


@dataclass(frozen=True)
class ThyroidResult:
    """The reported nodules (at most four, highest first), how many were left out, and exam-level notes."""

    system: str
    nodules: tuple[NoduleScore, ...]
    omitted: int
    selection_rule: str
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "nodules": [n.to_json() for n in self.nodules],
            "omitted_nodules": self.omitted,
            "selection_rule": self.selection_rule,
            "notes": list(self.notes),
        }


def score_exam(findings: ThyroidFindings | Sequence[Nodule], system: ScoringSystem = ACR_TIRADS) -> ThyroidResult:
    """Score every nodule, report the four highest and recommend FNA for at most two (see SELECTION_RULE)."""
    nodules = findings.nodules if isinstance(findings, ThyroidFindings) else tuple(findings)
    scored = [replace(system.score(n), number=i + 1) for i, n in enumerate(nodules)]
    ranked = sorted(scored, key=lambda s: (-s.total, -s.nodule.largest_mm, s.number))
    reported, left_out = ranked[:MAX_REPORTED], ranked[MAX_REPORTED:]
    notes: list[str] = []
    if not nodules:
        notes.append("No nodules reported.")
    if left_out:
        notes.append(
            f"{len(left_out)} further nodule(s) not reported: at most {MAX_REPORTED} are reported ({SELECTION_RULE})"
        )
        if any(s.fna_recommended for s in left_out):
            notes.append("A nodule that is not reported meets its FNA size criterion: review the full list")
    chosen: list[NoduleScore] = []
    fna_count = 0
    for score in reported:
        if score.fna_recommended and fna_count >= MAX_FNA:
            note = f"Meets the FNA size criterion, but FNA is limited to {MAX_FNA} nodules per exam: follow-up instead"
            score = replace(score, fna_recommended=False, follow_up_recommended=True, notes=(*score.notes, note))
        fna_count += score.fna_recommended
        chosen.append(score)
    if fna_count:
        notes.append(f"FNA recommended for {fna_count} nodule(s); at most {MAX_FNA}, chosen by {SELECTION_RULE}")
    return ThyroidResult(system.name, tuple(chosen), len(left_out), SELECTION_RULE, tuple(notes))
