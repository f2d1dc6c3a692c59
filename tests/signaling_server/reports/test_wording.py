"""Every coded note, flag, warning and word the rules can produce has its text in both catalogs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from signaling_server.localization.catalogs import LANGUAGES
from signaling_server.reports import carotid, tirads
from signaling_server.reports.tirads import Nodule, ThyroidFindings, ThyroidSystem
from signaling_server.reports.wording import Note, note, say

nodules = st.builds(
    Nodule,
    composition=st.sampled_from(tirads.Composition),
    echogenicity=st.sampled_from(tirads.Echogenicity),
    shape=st.sampled_from(tirads.Shape),
    margin=st.sampled_from(tirads.Margin),
    echogenic_foci=st.frozensets(st.sampled_from(tirads.EchogenicFocus), min_size=1),
    max_axial_mm=st.floats(0.5, 60),
    perpendicular_axial_mm=st.floats(0.5, 60),
    craniocaudal_mm=st.floats(0.5, 60),
    biopsy_proven_malignant=st.booleans(),
)
velocity = st.one_of(st.none(), st.just(0.0), st.floats(0.5, 600))
sides = st.builds(
    carotid.CarotidSide,
    side=st.just(carotid.Side.RIGHT),
    plaque=st.sampled_from(carotid.Plaque),
    flow=st.just(carotid.Flow.PRESENT),
    ica_psv_cm_s=velocity,
    cca_psv_cm_s=velocity,
    ica_cca_ratio=st.one_of(st.none(), st.floats(0.2, 8)),
    doppler_angle_deg=st.one_of(st.none(), st.floats(0, 90)),
    imt_mm=st.one_of(st.none(), st.floats(0.3, 3)),
    eca_psv_cm_s=velocity,
)


def _written(said: Note) -> None:
    for language in LANGUAGES:
        text = say(language, said)
        assert not text.startswith("clinical.") and "{" not in text, (language, said)


@settings(max_examples=60, deadline=None)
@given(st.lists(nodules, max_size=6), st.sampled_from(ThyroidSystem))
def test_thyroid_notes_have_text(found: list[Nodule], system: ThyroidSystem) -> None:
    result = tirads.score_exam(ThyroidFindings(tuple(found), system=system))
    for said in result.notes:
        _written(said)
    for score in result.nodules:
        for said in (*score.notes, note(f"level.{score.level}"), *(note(f"flag.{f}") for f in score.flags)):
            _written(said)
    for i, n in enumerate(found, start=1):
        for said in tirads.unit_warnings(n, i):
            _written(said)


@settings(max_examples=60, deadline=None)
@given(sides)
def test_carotid_notes_have_text(side: carotid.CarotidSide) -> None:
    graded = carotid.grade_side(side)
    for said in (*graded.notes, *graded.warnings, note(f"grade.{graded.grade.value}")):
        _written(said)
    for flag in graded.flags:
        _written(note(f"flag.{flag.value}"))
