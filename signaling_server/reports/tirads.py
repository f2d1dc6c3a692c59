"""ACR TI-RADS (Tessler et al., J Am Coll Radiol 2017;14:587-595; CLINICAL.md §1) as pure functions.

A nodule is five category choices and three diameters. `ACR_TIRADS.score(nodule)` gives the points, the TR level
and the size-based advice; `score_exam(findings)` adds the exam-level rules (at most four nodules reported, FNA for
at most two) with the system the findings name (`findings.system`: ACR TI-RADS here, C-TIRADS in ctirads.py; the
site's choice, recorded in every thyroid report). What the rules say are coded `Note`s (wording.py), never text.

Decisions the chart leaves open, made here once:
- A total of exactly 1 point is not in the chart: reported as TR2 by default, configurable to TR1 with
  `AcrTiRads(one_point_level=TRLevel.TR1)`, and always said in a note.
- "Cannot be judged" scores as the paper says: composition 2 (obscured by calcification), echogenicity 1, margin 0.
- A spongiform nodule scores 0 in every other category, so the counted points always add up to the total.
- Size thresholds are "≥" and compare the largest of the three diameters, in mm against the chart's cm × 10, so no
  rounding of mm to cm can move a nodule across a threshold.
- Inconsistent entries are flagged, not refused (`consistency_flags`): "none" ticked with other foci, a solid
  nodule called anechoic. A largest diameter under 2 mm is a likely unit slip (cm typed in a mm field): a warning
  the reader confirms (`unit_warnings`).
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
from signaling_server.reports.numbers import shown
from signaling_server.reports.wording import Note, english, messages, note

MAX_DIAMETER_MM = 150.0
MAX_NODULES = 50
MAX_REPORTED = 4
MAX_FNA = 2
SELECTION_RULE = "highest point total (so highest TR level) first, then largest diameter, then order of entry"
LIKELY_CM_BELOW_MM = 2.0  # a largest diameter under this many mm was probably typed in cm


class ThyroidSystem(StrEnum):
    """The nodule scoring systems a site may choose (stored on the site and in each thyroid report)."""

    ACR_TIRADS = "acr_tirads"
    C_TIRADS = "c_tirads"


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
    COMET_TAIL = "comet_tail"  # large comet-tail artefacts named apart: ACR scores them 0, C-TIRADS -1
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
        EchogenicFocus.COMET_TAIL: (0, "Large comet-tail artifacts"),
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
    """One row of the ACR chart: FNA and follow-up size thresholds (cm, compared with ≥); the level's schedule is
    the catalog's `clinical.schedule.<level>`."""

    fna_cm: float | None
    follow_up_cm: float | None


ACR_LEVELS: Mapping[TRLevel, LevelRule] = {
    TRLevel.TR1: LevelRule(None, None),
    TRLevel.TR2: LevelRule(None, None),
    TRLevel.TR3: LevelRule(2.5, 1.5),
    TRLevel.TR4: LevelRule(1.5, 1.0),
    TRLevel.TR5: LevelRule(1.0, 0.5),
}


def _foci(value: object, name: str) -> frozenset[EchogenicFocus]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{name} must be a list of choices")
    return frozenset(fields.choice(EchogenicFocus, item, name) for item in value)


def cm(value_cm: float, thresholds: tuple[float, ...] = ()) -> str:
    """A size in cm for report text: never rounded across a threshold (1.495 stays "1.495")."""
    return shown(value_cm, thresholds, decimals=2, least=1)


def at_least_cm(largest_mm: float, threshold_cm: float) -> bool:
    """largest ≥ threshold, compared in mm (the thresholds are whole tenths of a cm, so × 10 is exact)."""
    return largest_mm >= round(threshold_cm * 10, 6)


_DIAMETERS = ("max_axial_mm", "perpendicular_axial_mm", "craniocaudal_mm")
_NODULE_FIELDS = {
    "composition",
    "echogenicity",
    "shape",
    "margin",
    "echogenic_foci",
    "location",
    "biopsy_proven_malignant",
    *_DIAMETERS,
}


@dataclass(frozen=True)
class Nodule:
    """One thyroid nodule as the sonographer judged it; diameters in mm. `biopsy_proven_malignant` (C-TIRADS 6) is
    what a biopsy showed, not what the image shows."""

    composition: Composition
    echogenicity: Echogenicity
    shape: Shape
    margin: Margin
    echogenic_foci: frozenset[EchogenicFocus]
    max_axial_mm: float
    perpendicular_axial_mm: float
    craniocaudal_mm: float
    location: str = ""
    biopsy_proven_malignant: bool = False

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
        """For display only: thresholds compare `largest_mm` (`at_least_cm`)."""
        return self.largest_mm / 10

    @classmethod
    def from_json(cls, data: object, where: str = "") -> Nodule:
        body = fields.json_object(data, where, _NODULE_FIELDS)
        proven = body.get("biopsy_proven_malignant", False)
        try:
            if not isinstance(proven, bool):
                raise InvalidRequest(f"{where}biopsy_proven_malignant must be true or false")
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
                biopsy_proven_malignant=proven,
            )
        except InvalidRequest as error:
            if error.message.startswith(where):
                raise
            raise InvalidRequest(where + error.message) from None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
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
        if self.biopsy_proven_malignant:
            body["biopsy_proven_malignant"] = True
        return body


def consistency_flags(nodule: Nodule) -> tuple[str, ...]:
    """Entries that contradict each other (flagged, shown, never refused): the reader corrects one of them."""
    flags: list[str] = []
    if EchogenicFocus.NONE_OR_COMET_TAIL in nodule.echogenic_foci and len(nodule.echogenic_foci) > 1:
        flags.append("foci_none_with_others")
    if nodule.composition is Composition.SOLID and nodule.echogenicity is Echogenicity.ANECHOIC:
        flags.append("solid_anechoic")
    return tuple(flags)


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
    """The scored nodule. `level` is the system's category (TR1…TR5, C-TR2…C-TR6); `schedule` is the level's
    follow-up (a note), which applies when follow-up is recommended; `flags` are contradictory entries."""

    nodule: Nodule
    system: ThyroidSystem
    points: CategoryPoints
    level: str
    fna_recommended: bool
    follow_up_recommended: bool
    schedule: Note | None
    notes: tuple[Note, ...]
    number: int = 1  # order of entry in the exam, from 1
    flags: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.points.total

    @property
    def level_label(self) -> str:
        """The level's name in English (the catalog's `clinical.level.<level>`)."""
        return english([note(f"level.{self.level}")])[0]

    @property
    def follow_up_schedule(self) -> str:
        return english([self.schedule])[0] if self.schedule else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "nodule": self.nodule.to_json(),
            "system": self.system.value,
            "points": self.points.to_json(),
            "total": self.total,
            "level": self.level,
            "level_label": self.level_label,
            "largest_diameter_cm": self.nodule.largest_cm,
            "largest_diameter_text": size_text(self.nodule),
            "fna_recommended": self.fna_recommended,
            "follow_up_recommended": self.follow_up_recommended,
            "follow_up_schedule": self.follow_up_schedule,
            "schedule": None if self.schedule is None else self.schedule.to_json(),
            "notes": english(self.notes),
            "messages": messages(self.notes),
            "flags": list(self.flags),
        }


def size_text(nodule: Nodule) -> str:
    """The largest diameter in cm as report text, on the right side of every size threshold of both systems."""
    return cm(nodule.largest_cm, _all_thresholds_cm())


def _all_thresholds_cm() -> tuple[float, ...]:
    from signaling_server.reports import ctirads  # both systems' thresholds: the size text suits either

    acr = [t for rule in ACR_LEVELS.values() for t in (rule.fna_cm, rule.follow_up_cm) if t is not None]
    return (*acr, *ctirads.DEFAULT_FNA_CM.values())


class ScoringSystem(Protocol):
    """A thyroid nodule scoring system: ACR TI-RADS (here) or C-TIRADS (ctirads.py)."""

    @property
    def code(self) -> ThyroidSystem: ...

    def score(self, nodule: Nodule) -> NoduleScore: ...


@dataclass(frozen=True)
class AcrTiRads:
    """ACR TI-RADS 2017. `one_point_level` is the configurable answer for the 1-point total the chart leaves out."""

    one_point_level: TRLevel = TRLevel.TR2
    code: ThyroidSystem = ThyroidSystem.ACR_TIRADS

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
        notes: list[Note] = []
        if nodule.composition is Composition.SPONGIFORM:
            counted = CategoryPoints(0, 0, 0, 0, 0)
            notes.append(note("tirads.spongiform"))
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
                notes.append(note(f"tirads.{name}_cannot_determine", points=points(choice)))
        level = self.level(counted.total)
        if counted.total == 1:
            notes.append(note("tirads.one_point", level=level))
        fna, follow_up, advice = _size_advice(level, ACR_LEVELS[level], nodule)
        notes.append(advice)
        schedule = note(f"schedule.{level}") if ACR_LEVELS[level].follow_up_cm is not None else None
        return NoduleScore(
            nodule, self.code, counted, level, fna, follow_up, schedule, tuple(notes), flags=consistency_flags(nodule)
        )


ACR_TIRADS = AcrTiRads()


def _size_advice(level: TRLevel, rule: LevelRule, nodule: Nodule) -> tuple[bool, bool, Note]:
    """(FNA recommended, follow-up recommended, the note saying why)."""
    if rule.fna_cm is None or rule.follow_up_cm is None:
        return False, False, note("tirads.no_fna_no_follow_up", level=level)
    size = cm(nodule.largest_cm, (rule.fna_cm, rule.follow_up_cm))
    if at_least_cm(nodule.largest_mm, rule.fna_cm):
        return True, False, note("tirads.fna", size=size, threshold=cm(rule.fna_cm), level=level)
    if at_least_cm(nodule.largest_mm, rule.follow_up_cm):
        return False, True, note(f"tirads.follow_up.{level}", size=size, threshold=cm(rule.follow_up_cm), level=level)
    return False, False, note("tirads.below_follow_up", size=size, threshold=cm(rule.follow_up_cm), level=level)


def unit_warnings(nodule: Nodule, number: int) -> tuple[Note, ...]:
    """A nodule whose largest diameter is under 2 mm was probably measured in cm: the reader confirms it."""
    if nodule.largest_mm < LIKELY_CM_BELOW_MM:
        return (note("warning.diameter_unit", number=number, size=shown(nodule.largest_mm, (LIKELY_CM_BELOW_MM,))),)
    return ()


@dataclass(frozen=True)
class ThyroidFindings:
    """What a thyroid report's author enters: the scoring system (the site's, fixed when the report is started),
    the nodules in order of entry and a free comment."""

    nodules: tuple[Nodule, ...] = ()
    comment: str = ""
    system: ThyroidSystem = ThyroidSystem.ACR_TIRADS

    @classmethod
    def from_json(cls, data: object) -> ThyroidFindings:
        body = fields.json_object(data, "", {"nodules", "comment", "system"})
        nodules = body.get("nodules", [])
        if not isinstance(nodules, list) or len(nodules) > MAX_NODULES:
            raise InvalidRequest(f"nodules must be a list of at most {MAX_NODULES} nodules")
        parsed = tuple(Nodule.from_json(item, f"nodules[{i}].") for i, item in enumerate(nodules))
        system = fields.choice(ThyroidSystem, body.get("system", ThyroidSystem.ACR_TIRADS.value), "system")
        return cls(parsed, fields.text(body, "comment", "", 10_000), system)

    def to_json(self) -> dict[str, Any]:
        return {"system": self.system.value, "nodules": [n.to_json() for n in self.nodules], "comment": self.comment}


@dataclass(frozen=True)
class ThyroidResult:
    """The reported nodules (at most four, highest first), how many were left out, and exam-level notes."""

    system: ThyroidSystem
    nodules: tuple[NoduleScore, ...]
    omitted: int
    selection_rule: str
    notes: tuple[Note, ...]

    @property
    def system_name(self) -> str:
        return english([note(f"system.{self.system.value}")])[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system.value,
            "system_name": self.system_name,
            "nodules": [n.to_json() for n in self.nodules],
            "omitted_nodules": self.omitted,
            "selection_rule": self.selection_rule,
            "notes": english(self.notes),
            "messages": messages(self.notes),
        }


def system_for(code: ThyroidSystem) -> ScoringSystem:
    from signaling_server.reports import ctirads  # ctirads builds on this module's nodule

    return ACR_TIRADS if code is ThyroidSystem.ACR_TIRADS else ctirads.C_TIRADS


def score_exam(findings: ThyroidFindings | Sequence[Nodule], system: ScoringSystem | None = None) -> ThyroidResult:
    """Score every nodule with the findings' system, report the four highest and recommend FNA for at most two
    (see SELECTION_RULE)."""
    if isinstance(findings, ThyroidFindings):
        nodules, chosen_system = findings.nodules, findings.system
    else:
        nodules, chosen_system = tuple(findings), ThyroidSystem.ACR_TIRADS
    system = system or system_for(chosen_system)
    scored = [replace(system.score(n), number=i + 1) for i, n in enumerate(nodules)]
    ranked = sorted(scored, key=lambda s: (-_rank(s), -s.nodule.largest_mm, s.number))
    reported, left_out = ranked[:MAX_REPORTED], ranked[MAX_REPORTED:]
    notes: list[Note] = []
    if not nodules:
        notes.append(note(f"{system.code.value}.no_nodules"))
    if left_out:
        notes.append(note("tirads.omitted", count=len(left_out), most=MAX_REPORTED))
        if any(s.fna_recommended for s in left_out):
            notes.append(note("tirads.omitted_fna"))
    chosen: list[NoduleScore] = []
    fna_count = 0
    for score in reported:
        if score.fna_recommended and fna_count >= MAX_FNA:
            limited = note("tirads.fna_limit", most=MAX_FNA)
            score = replace(score, fna_recommended=False, follow_up_recommended=True, notes=(*score.notes, limited))
        fna_count += score.fna_recommended
        chosen.append(score)
    if fna_count:
        notes.append(note("tirads.fna_count", count=fna_count, most=MAX_FNA))
    return ThyroidResult(system.code, tuple(chosen), len(left_out), SELECTION_RULE, tuple(notes))


def _rank(score: NoduleScore) -> int:
    """Rank by the level, which both systems order by their totals (C-TR6, proven, first)."""
    return 100 if score.level == "C-TR6" else score.total
