"""Exam completeness (QC.md §2): the protocols of CLINICAL.md §3 as data, and how much of one an exam covered.

Each capture of a consultation carries the labels the sonographer gave it (qc.labels:
side, structure, plane, mode, Doppler angle). A protocol is a list of items, each a pattern over those labels
with a weight and a `required` flag. An item is done by the first capture whose labels are valid and match it;
completeness is the weighted share of the *required* items done (0–1, higher is better). Optional items are
shown on the checklist and never lower the value.

Rules that make a label valid for an item:

- the labels validate (:class:`CaptureLabels`), so an unknown structure or a Doppler angle on a B-mode capture
  counts for nothing;
- colour items need colour or power Doppler or triplex; spectral items need PW Doppler or triplex with an
  angle-corrected Doppler angle of at most 60° (a spectral capture at 62° does not count); the vertebral
  artery's flow direction needs no angle, but a given one over 60° still does not count.

What labels cannot show (nodule measurements and TI-RADS categories, the lymph-node survey, PSV/EDV values, IMT)
is not on these checklists: the reading report covers it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qc.labels import COLOUR_MODES, STRUCTURES, CaptureLabels, LabelsError

CAPTURE_LABEL_FIELDS = ("side", "structure", "plane", "mode", "doppler_angle")
SPECTRAL_MODES = frozenset({"pw_doppler", "triplex"})
MAX_SPECTRAL_ANGLE = 60.0
MODE_KINDS = ("b_mode", "colour", "spectral", "any")


@dataclass(frozen=True)
class ProtocolItem:
    key: str
    label: str
    structures: tuple[str, ...]  # any of these
    mode: str = "b_mode"  # one of MODE_KINDS
    side: str | None = None  # "R", "L", or None for any
    plane: str | None = None  # "transverse", "longitudinal", or None for any
    weight: float = 1.0
    required: bool = True
    angle_optional: bool = False  # spectral: the angle may be missing (flow direction only)

    def matches(self, labels: CaptureLabels) -> bool:
        if labels.structure not in self.structures:
            return False
        if (self.side and labels.side != self.side) or (self.plane and labels.plane != self.plane):
            return False
        if self.mode == "b_mode":
            return labels.mode == "b_mode"
        if self.mode == "colour":
            return labels.mode in COLOUR_MODES
        if self.mode == "spectral":
            angle = labels.doppler_angle
            if labels.mode not in SPECTRAL_MODES:
                return False
            return (angle is None and self.angle_optional) or (angle is not None and abs(angle) <= MAX_SPECTRAL_ANGLE)
        return True


@dataclass(frozen=True)
class Protocol:
    name: str
    items: tuple[ProtocolItem, ...]


def _thyroid() -> Protocol:
    lobes = (("right", "thyroid right lobe"), ("left", "thyroid left lobe"))
    items = [
        ProtocolItem(f"{side}_{plane}", f"{side.capitalize()} lobe, {plane}", (structure,), plane=plane)
        for side, structure in lobes
        for plane in ("transverse", "longitudinal")
    ]
    items.append(ProtocolItem("isthmus_transverse", "Isthmus, transverse", ("thyroid isthmus",), plane="transverse"))
    items.append(
        ProtocolItem(
            "vascularity",
            "Vascularity, colour or power Doppler",
            ("thyroid right lobe", "thyroid left lobe", "thyroid isthmus"),
            mode="colour",
        )
    )
    return Protocol("thyroid", tuple(items))


def _carotid() -> Protocol:
    items: list[ProtocolItem] = []
    for side, name in (("R", "Right"), ("L", "Left")):
        s = side.lower()
        items += [
            ProtocolItem(f"{s}_cca_long", f"{name} CCA, B-mode longitudinal", ("CCA",), "b_mode", side, "longitudinal"),
            ProtocolItem(f"{s}_cca_trans", f"{name} CCA, B-mode transverse", ("CCA",), "b_mode", side, "transverse"),
            ProtocolItem(f"{s}_bulb", f"{name} bulb, B-mode", ("bulb",), side=side),
            ProtocolItem(f"{s}_ica", f"{name} ICA, B-mode", ("ICA",), side=side),
            ProtocolItem(f"{s}_eca", f"{name} ECA, B-mode", ("ECA",), side=side, weight=0.5),
        ]
        items += [
            ProtocolItem(f"{s}_{v.lower()}_colour", f"{name} {v}, colour Doppler", (v,), mode="colour", side=side)
            for v in ("CCA", "bulb", "ICA", "ECA")
        ]
        items += [
            ProtocolItem(f"{s}_cca_pw", f"{name} CCA, spectral ≤ 60°", ("CCA",), "spectral", side, weight=2.0),
            ProtocolItem(f"{s}_ica_pw", f"{name} ICA, spectral ≤ 60°", ("ICA",), "spectral", side, weight=2.0),
            ProtocolItem(f"{s}_eca_pw", f"{name} ECA, spectral ≤ 60°", ("ECA",), "spectral", side),
            ProtocolItem(
                f"{s}_vertebral",
                f"{name} vertebral flow direction",
                ("vertebral",),
                "spectral",
                side,
                angle_optional=True,
            ),
        ]
    return Protocol("carotid", tuple(items))


PROTOCOLS: dict[str, Protocol] = {"thyroid": _thyroid(), "carotid": _carotid()}


@dataclass(frozen=True)
class ChecklistEntry:
    key: str
    label: str
    required: bool
    weight: float
    done: bool
    capture: str | None  # the id of the first capture that did it

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "required": self.required,
            "weight": self.weight,
            "done": self.done,
            "capture": self.capture,
        }


@dataclass(frozen=True)
class Completeness:
    protocol: str
    value: float  # 0–1: the weighted share of required items done
    items: tuple[ChecklistEntry, ...]

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(i.key for i in self.items if i.required and not i.done)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "value": round(self.value, 4), "items": [i.to_dict() for i in self.items]}


def _labels(capture: Mapping[str, Any]) -> CaptureLabels | None:
    raw = capture.get("labels", capture)
    try:
        return CaptureLabels.from_dict({k: v for k, v in raw.items() if k in CAPTURE_LABEL_FIELDS})
    except (LabelsError, AttributeError):
        return None


def completeness(protocol: Protocol | str, captures: Iterable[Mapping[str, Any]]) -> Completeness:
    """The checklist of `protocol` against `captures`, in capture order.

    A capture is a mapping with an ``id`` and ``labels`` (a timeline ``capture`` event, a capture request), or
    the labels mapping itself. Raises KeyError for an unknown protocol name.
    """
    proto = PROTOCOLS[protocol] if isinstance(protocol, str) else protocol
    labelled = [(str(c.get("id", i)), _labels(c)) for i, c in enumerate(captures)]
    valid = [(capture_id, labels) for capture_id, labels in labelled if labels is not None]
    entries = []
    for item in proto.items:
        by = next((capture_id for capture_id, labels in valid if item.matches(labels)), None)
        entries.append(ChecklistEntry(item.key, item.label, item.required, item.weight, by is not None, by))
    required = [e for e in entries if e.required]
    total = sum(e.weight for e in required)
    value = sum(e.weight for e in required if e.done) / total if total else 1.0
    return Completeness(proto.name, value, tuple(entries))


def exam_of(captures: Iterable[Mapping[str, Any]]) -> str | None:
    """The protocol most captures' structures belong to (None when no capture names a known structure)."""
    counts: dict[str, int] = {}
    for capture in captures:
        labels = _labels(capture)
        if labels is not None and labels.structure is not None:
            exam = STRUCTURES[labels.structure]
            counts[exam] = counts.get(exam, 0) + 1
    return max(counts, key=lambda e: counts[e]) if counts else None
