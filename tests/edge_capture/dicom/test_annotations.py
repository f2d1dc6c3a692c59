"""The expert's marks as a Grayscale or Color Softcopy Presentation State beside the still, never in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_capture.datachannel import Mark, Pointer
from edge_capture.dicom.annotations import arrowhead, build_presentation_state, cielab
from edge_capture.dicom.ultrasound import build_still
from edge_capture.sources.synthetic import SyntheticSource
from qc.labels import CaptureLabels
from tests.edge_capture.dicom.conftest import context, real_us_frames, save_and_validate, synthetic_frames

ARROW = Mark("a1", "arrow", ((0.25, 0.30), (0.40, 0.50)), "#ff0000", from_="expert-1", at=1.0)
CIRCLE = Mark("c1", "circle", ((0.50, 0.50), (0.55, 0.50)))
FREEHAND = Mark("f1", "freehand", ((0.10, 0.10), (0.20, 0.15), (0.30, 0.10)), "#00ff00")
LOOP = Mark("f2", "freehand", ((0.60, 0.60), (0.70, 0.60), (0.65, 0.70), (0.60, 0.60)), "#00ff00")
MARKS = (ARROW, CIRCLE, FREEHAND, LOOP, Pointer(0.5, 0.5))


def objects_by_layer(ps: object) -> dict[str, list[tuple[str, list[float]]]]:
    layers: dict[str, list[tuple[str, list[float]]]] = {}
    for annotation in ps.GraphicAnnotationSequence:  # type: ignore[attr-defined]
        layers[annotation.GraphicLayer] = [
            (o.GraphicType, list(o.GraphicData)) for o in annotation.GraphicObjectSequence
        ]
    return layers


@pytest.mark.parametrize("grey", [False, True])
def test_marks_are_a_presentation_state_referencing_the_image(
    carotid: SyntheticSource, grey: bool, tmp_path: Path
) -> None:
    (frame,) = synthetic_frames(carotid, 1, grey=grey)
    study = context("carotid")
    image = save_and_validate(build_still(frame, study, CaptureLabels(side="L")), tmp_path / "image.dcm")
    ps = build_presentation_state(image, MARKS, study, frame.capture_time_ns)
    assert ps is not None
    ps = save_and_validate(ps, tmp_path / "marks.dcm")
    expected_class = "1.2.840.10008.5.1.4.1.1.11.1" if grey else "1.2.840.10008.5.1.4.1.1.11.2"
    assert ps.SOPClassUID == expected_class and ps.Modality == "PR"
    assert ps.StudyInstanceUID == image.StudyInstanceUID
    assert ps.SeriesInstanceUID != image.SeriesInstanceUID
    assert ps.Laterality == "L" and ps.ContentCreatorName == "Expert^Eve"
    (series,) = ps.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == image.SeriesInstanceUID
    (referenced,) = series.ReferencedImageSequence
    assert (referenced.ReferencedSOPClassUID, referenced.ReferencedSOPInstanceUID) == (
        image.SOPClassUID,
        image.SOPInstanceUID,
    )
    assert ("PresentationLUTShape" in ps) == grey and ("ICCProfile" in ps) == (not grey)

    w, h = carotid.width, carotid.height
    layers = objects_by_layer(ps)
    assert set(layers) == {"MARKS_FF0000", "MARKS_FFD700", "MARKS_00FF00"}  # the pointer is not a mark
    arrow_line, head = layers["MARKS_FF0000"]
    assert arrow_line == ("POLYLINE", pytest.approx([0.25 * w, 0.30 * h, 0.40 * w, 0.50 * h]))
    assert head[0] == "POLYLINE" and head[1][2:4] == pytest.approx([0.40 * w, 0.50 * h])
    assert layers["MARKS_FFD700"] == [("CIRCLE", pytest.approx([0.5 * w, 0.5 * h, 0.55 * w, 0.5 * h]))]
    freehand, loop = layers["MARKS_00FF00"]
    assert freehand == ("POLYLINE", pytest.approx([0.1 * w, 0.1 * h, 0.2 * w, 0.15 * h, 0.3 * w, 0.1 * h]))
    assert loop[0] == "POLYLINE" and len(loop[1]) == 8
    # the pixels stay as captured: nothing was burned in
    expected = frame.image[..., 0] if grey else frame.image[..., ::-1]
    assert np.array_equal(image.pixel_array, expected)


def test_marks_on_a_real_colour_still(tmp_path: Path) -> None:
    (frame,) = real_us_frames("US1_UNCR.dcm")
    study = context("thyroid")
    image = build_still(frame, study, CaptureLabels(mode="power_doppler"))
    ps = build_presentation_state(image, [CIRCLE], study, frame.capture_time_ns, instance_number=3)
    assert ps is not None
    ps = save_and_validate(ps, tmp_path / "marks.dcm")
    assert ps.BodyPartExamined == "THYROID" and "Laterality" not in ps and ps.InstanceNumber == 3
    area = ps.DisplayedAreaSelectionSequence[0]
    assert list(area.DisplayedAreaBottomRightHandCorner) == [640, 480]


def test_no_marks_no_presentation_state(thyroid: SyntheticSource) -> None:
    (frame,) = synthetic_frames(thyroid, 1)
    image = build_still(frame, context(), CaptureLabels())
    assert build_presentation_state(image, [Pointer(0.1, 0.2)], context(), frame.capture_time_ns) is None
    assert build_presentation_state(image, [], context(), frame.capture_time_ns) is None


def test_arrowhead_wings_sit_behind_the_head() -> None:
    left, head, right = arrowhead((0.0, 0.0), (100.0, 0.0), 640, 480)
    assert head == (100.0, 0.0)
    assert left[0] < 100 and right[0] < 100 and left[1] == pytest.approx(-right[1])
    assert arrowhead((5.0, 5.0), (5.0, 5.0), 640, 480) == []


def test_layer_colours_are_cielab() -> None:
    white, red = cielab("#ffffff"), cielab("#ff0000")
    assert white[0] == pytest.approx(65535, abs=10)
    assert white[1] == pytest.approx(32896, abs=300) and white[2] == pytest.approx(32896, abs=300)
    assert red[1] > 50000  # a* strongly positive
