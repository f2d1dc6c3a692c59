"""C-TIRADS, the Chinese thyroid nodule scoring system (CLINICAL.md §1), as a pure `ScoringSystem` beside ACR.

Source: Zhou J. et al., "2020 Chinese guidelines for ultrasound malignancy risk stratification of thyroid nodules:
the C-TIRADS", Endocrine 2020;70:256-279. C-TIRADS counts suspicious features instead of weighting them:

    +1 vertical orientation (taller-than-wide)       +1 solid composition
    +1 marked hypoechogenicity (very hypoechoic)     +1 punctate echogenic foci (suspected microcalcification)
    +1 ill-defined or irregular (lobulated) margin, or extrathyroidal extension (one point for the margin)
    -1 comet-tail artefact

    score   -1      0       1        2        3-4      5
    level   C-TR2   C-TR3   C-TR4A   C-TR4B   C-TR4C   C-TR5
    risk    0 %     < 2 %   2-10 %   10-50 %  50-90 %  > 90 %

C-TR1 is "no nodule" (an exam without nodules says so), C-TR6 a biopsy-proven malignancy (`biopsy_proven_malignant`).

FNA by size, from the guideline's table of FNA indications (`DEFAULT_FNA_CM`, configurable as `fna_cm`): C-TR3 when
the largest diameter is > 2 cm, C-TR4A > 1.5 cm, C-TR4B, C-TR4C and C-TR5 > 1 cm. The guideline's thresholds are
strict ("greater than"): exactly 1.0 cm is not FNA. Smaller C-TR3 to C-TR5 nodules are followed up by ultrasound;
for C-TR4C and C-TR5 under 1 cm the guideline also allows FNA from 5 mm next to the capsule, trachea or recurrent
laryngeal nerve, or when multifocal (a note says so; those facts are not among the form's fields).

Decisions made here once:
- Composition "cannot be determined" is not counted as solid (only what is seen counts), with a note.
- A spongiform nodule is not solid and counts no composition point; it has no special rule in C-TIRADS.
- Echogenic foci count once each way: punctate +1 however many kinds are ticked, comet-tail -1 (the separate
  `comet_tail` choice; "none or comet-tail" is read as none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from signaling_server.reports.numbers import shown
from signaling_server.reports.tirads import (
    CategoryPoints,
    Composition,
    EchogenicFocus,
    Echogenicity,
    Margin,
    Nodule,
    NoduleScore,
    Shape,
    ThyroidSystem,
    cm,
    consistency_flags,
)
from signaling_server.reports.wording import Note, note

LEVELS = ("C-TR2", "C-TR3", "C-TR4A", "C-TR4B", "C-TR4C", "C-TR5")
PROVEN = "C-TR6"
DEFAULT_FNA_CM: Mapping[str, float] = MappingProxyType(
    {"C-TR3": 2.0, "C-TR4A": 1.5, "C-TR4B": 1.0, "C-TR4C": 1.0, "C-TR5": 1.0}
)
_SUSPICIOUS_MARGINS = (Margin.ILL_DEFINED, Margin.LOBULATED_OR_IRREGULAR, Margin.EXTRATHYROIDAL_EXTENSION)


def counted(nodule: Nodule) -> CategoryPoints:
    """The features C-TIRADS counts, per ACR category so the form can show where each point comes from."""
    foci = nodule.echogenic_foci
    return CategoryPoints(
        composition=int(nodule.composition is Composition.SOLID),
        echogenicity=int(nodule.echogenicity is Echogenicity.VERY_HYPOECHOIC),
        shape=int(nodule.shape is Shape.TALLER_THAN_WIDE),
        margin=int(nodule.margin in _SUSPICIOUS_MARGINS),
        echogenic_foci=int(EchogenicFocus.PUNCTATE in foci) - int(EchogenicFocus.COMET_TAIL in foci),
    )


def level(score: int) -> str:
    """The category of a score from -1 to 5 (the only scores five +1 features and one -1 can make)."""
    if not -1 <= score <= 5:
        raise ValueError(f"a C-TIRADS score is between -1 and 5, got {score}")
    return {-1: "C-TR2", 0: "C-TR3", 1: "C-TR4A", 2: "C-TR4B", 3: "C-TR4C", 4: "C-TR4C", 5: "C-TR5"}[score]


@dataclass(frozen=True)
class CTiRads:
    """C-TIRADS 2020; `fna_cm` maps each level to its FNA size (largest diameter strictly greater, in cm)."""

    fna_cm: Mapping[str, float] = field(default_factory=lambda: DEFAULT_FNA_CM)
    code: ThyroidSystem = ThyroidSystem.C_TIRADS

    def __post_init__(self) -> None:
        if set(self.fna_cm) != set(DEFAULT_FNA_CM) or not all(0 < v <= 15 for v in self.fna_cm.values()):
            raise ValueError(f"fna_cm needs a size in cm (0-15] for each of {', '.join(DEFAULT_FNA_CM)}")

    def score(self, nodule: Nodule) -> NoduleScore:
        points = counted(nodule)
        notes: list[Note] = []
        if nodule.composition is Composition.CANNOT_DETERMINE:
            notes.append(note("c_tirads.composition_cannot_determine"))
        if nodule.biopsy_proven_malignant:
            notes.append(note("c_tirads.proven"))
            return NoduleScore(
                nodule, self.code, points, PROVEN, False, False, None, tuple(notes), flags=consistency_flags(nodule)
            )
        category = level(points.total)
        fna, follow_up, advice = self._size_advice(category, nodule)
        notes += advice
        schedule = note("schedule.c_tirads") if follow_up else None
        return NoduleScore(
            nodule, self.code, points, category, fna, follow_up, schedule, tuple(notes), flags=consistency_flags(nodule)
        )

    def _size_advice(self, category: str, nodule: Nodule) -> tuple[bool, bool, list[Note]]:
        threshold = self.fna_cm.get(category)
        if threshold is None:
            return False, False, [note("c_tirads.benign", level=category)]
        size = cm(nodule.largest_cm, (threshold,))
        if nodule.largest_mm > round(threshold * 10, 6):
            return True, False, [note("c_tirads.fna", size=size, threshold=cm(threshold), level=category)]
        notes = [note("c_tirads.follow_up", size=size, threshold=cm(threshold), level=category)]
        if category in ("C-TR4C", "C-TR5") and nodule.largest_mm > 5:
            notes.append(note("c_tirads.small_suspicious", level=category, size=shown(nodule.largest_mm, (5, 10))))
        return False, True, notes


C_TIRADS = CTiRads()
