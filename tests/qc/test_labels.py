"""CaptureLabels: validated on decode, a closed vocabulary, stable error code."""

from __future__ import annotations

import pytest

from qc.labels import STRUCTURES, CaptureLabels, LabelsError


def test_defaults_are_an_unlabelled_b_mode_image() -> None:
    labels = CaptureLabels.from_json("{}")
    assert labels == CaptureLabels(side="none", structure=None, plane=None, mode="b_mode", doppler_angle=None)
    assert labels.mode_bitmap == "0001"
    assert CaptureLabels.from_dict(None) == labels


def test_json_round_trip() -> None:
    labels = CaptureLabels("L", "ICA", "longitudinal", "triplex", 60)
    assert CaptureLabels.from_json(labels.to_json()) == labels
    assert labels.doppler_angle == 60.0 and isinstance(labels.doppler_angle, float)
    assert labels.mode_bitmap == "0019"
    assert labels.describe() == "L, ICA, longitudinal, triplex, Doppler angle 60°"


def test_structures_match_case_insensitively_to_their_canonical_spelling() -> None:
    assert CaptureLabels(structure="cca").structure == "CCA"
    assert CaptureLabels(structure="Thyroid Right Lobe").structure == "thyroid right lobe"
    assert set(STRUCTURES.values()) == {"thyroid", "carotid"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "labels are not JSON text"),
        ("[1]", "labels must be a JSON object"),
        ('{"side": "left"}', "side must be one of R, L, none"),
        ('{"structure": "liver"}', "structure must be one of"),
        ('{"structure": 7}', "structure must be one of"),
        ('{"plane": "coronal"}', "plane must be one of transverse, longitudinal"),
        ('{"mode": "M"}', "mode must be one of b_mode, colour_doppler"),
        ('{"mode": ["b_mode"]}', "mode must be one of"),
        ('{"mode": "pw_doppler", "doppler_angle": 95}', "doppler_angle must be within ±90 degrees"),
        ('{"mode": "pw_doppler", "doppler_angle": true}', "doppler_angle must be a finite number"),
        ('{"mode": "pw_doppler", "doppler_angle": "60"}', "doppler_angle must be a finite number"),
        ('{"doppler_angle": 60}', "doppler_angle needs a Doppler mode"),
        ('{"sides": "R"}', "unknown label field 'sides'"),
    ],
)
def test_invalid_labels_are_refused_with_a_stable_code(text: str, message: str) -> None:
    with pytest.raises(LabelsError) as caught:
        CaptureLabels.from_json(text)
    assert caught.value.code == "invalid_labels"
    assert caught.value.message.startswith(message)
    assert isinstance(caught.value, ValueError)


def test_side_null_means_none() -> None:
    assert CaptureLabels.from_json('{"side": null, "mode": "colour_doppler"}').side == "none"
    assert CaptureLabels(mode="colour_doppler").has_colour_flow
    assert not CaptureLabels(mode="pw_doppler").has_colour_flow
