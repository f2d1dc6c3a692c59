"""Every SR we write is a conformant Part 10 file by dicom3tools' dciodvfy, and says what the rules found."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import BasicTextSRStorage, ComprehensiveSRStorage

from signaling_server.errors import InvalidRequest
from signaling_server.reports.carotid import CarotidFindings
from signaling_server.reports.sr import (
    FreeText,
    Predecessor,
    ReportStatus,
    ReportVersion,
    StudyHeader,
    build_sr,
    carotid_sr,
    free_text_sr,
    thyroid_sr,
)
from signaling_server.reports.tirads import ThyroidFindings

STUDY = StudyHeader(
    patient_name="张^三",
    patient_id="NORTH-000123",
    patient_birth_date="19680304",
    patient_sex="F",
    study_instance_uid="1.2.826.0.1.3680043.8.498.7301",
    accession_number="ACC20240501",
    referring_physician="王^医生",
    study_date="20240501",
    study_time="101500",
    study_id="S1",
)
SIGNED = datetime(2024, 5, 1, 10, 55, tzinfo=UTC)
PRELIMINARY = ReportVersion("李^明", 1, ReportStatus.PRELIMINARY, SIGNED)
FINAL = ReportVersion(
    "李^明", 1, ReportStatus.FINAL, SIGNED, approver="Zhao^Senior", approved_at=datetime(2024, 5, 1, 11, 20, tzinfo=UTC)
)
CAROTID = CarotidFindings.from_json(
    {
        "right": {
            "plaque": "visible",
            "flow": "present",
            "ica_psv_cm_s": 180,
            "ica_edv_cm_s": 35,
            "cca_psv_cm_s": 60,
            "doppler_angle_deg": 56,
            "imt_mm": 1.1,
            "eca_psv_cm_s": 90,
            "vertebral_flow": "retrograde",
        },
        "left": {"plaque": "none", "flow": "present", "ica_psv_cm_s": 95, "doppler_angle_deg": 64},
        "comment": "建议复查",
    }
)
THYROID = ThyroidFindings.from_json(
    {
        "nodules": [
            {
                "composition": "solid",
                "echogenicity": "hypoechoic",
                "shape": "wider_than_tall",
                "margin": "smooth",
                "echogenic_foci": ["none_or_comet_tail"],
                "max_axial_mm": 16,
                "perpendicular_axial_mm": 11,
                "craniocaudal_mm": 14,
                "location": "右叶中部",
            },
            {
                "composition": "mixed_cystic_solid",
                "echogenicity": "anechoic",
                "shape": "wider_than_tall",
                "margin": "smooth",
                "echogenic_foci": ["none_or_comet_tail"],
                "max_axial_mm": 8,
                "perpendicular_axial_mm": 6,
                "craniocaudal_mm": 7,
            },
        ],
        "comment": "甲状腺大小正常",
    }
)
CT = FreeText("右肺上叶见一 6 mm 实性结节。", "考虑良性，建议 12 个月复查。", "CT")


def dciodvfy(path: Path) -> str:
    run = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, check=False)
    return run.stdout + run.stderr


def written(ds: Dataset, tmp_path: Path, name: str) -> Dataset:
    """Save as a Part 10 file, assert dciodvfy reports no error (showing its output if it does), read it back."""
    path = tmp_path / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    output = dciodvfy(path)
    errors = [line for line in output.splitlines() if "Error" in line]
    assert errors == [], output
    return pydicom.dcmread(path)


def items(node: Dataset) -> Iterator[Dataset]:
    for item in node.get("ContentSequence", []):
        yield item
        yield from items(item)


def named(node: Dataset, meaning: str) -> list[Dataset]:
    return [i for i in items(node) if i.ConceptNameCodeSequence[0].CodeMeaning == meaning]


def texts(node: Dataset) -> list[str]:
    return [str(i.TextValue) for i in items(node) if i.ValueType == "TEXT"]


def numbers(node: Dataset, meaning: str) -> list[float]:
    return [float(i.MeasuredValueSequence[0].NumericValue) for i in named(node, meaning)]


def coded(node: Dataset, meaning: str) -> list[str]:
    return [i.ConceptCodeSequence[0].CodeMeaning for i in named(node, meaning)]


def sections(ds: Dataset) -> dict[str, Dataset]:
    """Carotid Findings sections by laterality."""
    found = {}
    for section in named(ds, "Findings"):
        laterality = coded(section, "Laterality")
        found[laterality[0]] = section
    return found


def test_carotid_both_sides_final(tmp_path: Path) -> None:
    ds = written(carotid_sr(STUDY, FINAL, CAROTID), tmp_path, "carotid")
    assert ds.SOPClassUID == ComprehensiveSRStorage
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "5100"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "125100"
    right, left = sections(ds)["Right"], sections(ds)["Left"]
    assert coded(right, "Finding Site") == ["Artery of neck"]
    ica = named(right, "Internal carotid artery")[0]
    assert numbers(ica, "Peak Systolic Velocity") == [180.0]
    assert numbers(ica, "End Diastolic Velocity") == [35.0]
    assert numbers(ica, "Doppler Angle") == [56.0, 56.0]  # a property of each ICA velocity
    assert coded(ica, "ICA stenosis grade (SRU 2003)") == ["50–69 % stenosis"]
    assert numbers(right, "ICA/CCA velocity ratio") == [3.0]
    assert numbers(named(right, "Common carotid artery")[0], "Intima-media thickness") == [1.1]
    assert coded(named(right, "Vertebral artery")[0], "Vertebral flow direction") == ["Retrograde Direction"]
    assert numbers(named(right, "External carotid artery")[0], "Peak Systolic Velocity") == [90.0]
    assert coded(left, "ICA stenosis grade (SRU 2003)") == ["Not graded"]
    assert any("64° > 60°" in t and "not graded" in t for t in texts(left))
    assert "建议复查" in texts(ds)
    assert ds.VerificationFlag == "VERIFIED" and ds.PreliminaryFlag == "FINAL"
    assert ds.VerifyingObserverSequence[0].VerifyingObserverName == "Zhao^Senior"


@pytest.mark.parametrize("side", ["right", "left"])
def test_carotid_one_side_preliminary(tmp_path: Path, side: str) -> None:
    one = CarotidFindings.from_json({side: {"plaque": "lumen_narrowed", "flow": "present", "ica_psv_cm_s": 260}})
    ds = written(carotid_sr(STUDY, PRELIMINARY, one), tmp_path, f"carotid-{side}")
    assert list(sections(ds)) == [side.capitalize()]
    assert coded(ds, "ICA stenosis grade (SRU 2003)") == ["≥ 70 % stenosis to near occlusion"]
    assert ds.VerificationFlag == "UNVERIFIED" and ds.PreliminaryFlag == "PRELIMINARY"
    assert "VerifyingObserverSequence" not in ds


def test_carotid_occlusions_are_written(tmp_path: Path) -> None:
    findings = CarotidFindings.from_json(
        {
            "right": {"plaque": "visible", "flow": "absent"},
            "left": {"plaque": "markedly_narrowed", "flow": "present", "vertebral_flow": "absent"},
        }
    )
    ds = written(carotid_sr(STUDY, FINAL, findings), tmp_path, "occlusions")
    assert coded(ds, "ICA stenosis grade (SRU 2003)") == ["Total occlusion", "Near occlusion"]
    assert coded(ds, "Vertebral flow direction") == ["Flow absent"]


def test_thyroid_preliminary(tmp_path: Path) -> None:
    ds = written(thyroid_sr(STUDY, PRELIMINARY, THYROID), tmp_path, "thyroid")
    assert ds.ConceptNameCodeSequence[0].CodeMeaning == "US Thyroid Report"
    groups = named(ds, "Measurement Group")
    assert len(groups) == 2
    first, second = groups
    assert coded(first, "TI-RADS level") == ["TR4 moderately suspicious"]
    assert numbers(first, "TI-RADS total points") == [4.0]
    assert numbers(first, "Major Axis") == [16.0]
    assert numbers(first, "Perpendicular Axis") == [11.0]
    assert numbers(first, "Length") == [14.0]
    assert coded(first, "TI-RADS composition") == ["Solid or almost completely solid"]
    assert "FNA recommended" in texts(first) and "右叶中部" in texts(first)
    assert coded(second, "TI-RADS level") == ["TR2 not suspicious"]
    assert any("reported as TR2 (configurable rule)" in t for t in texts(second))
    assert "甲状腺大小正常" in texts(ds)
    assert any(t.startswith("Nodule 1 (右叶中部): TR4") for t in texts(named(ds, "Impressions")[0]))


def test_thyroid_points_per_category_add_up(tmp_path: Path) -> None:
    ds = written(thyroid_sr(STUDY, FINAL, THYROID), tmp_path, "thyroid-final")
    for group in named(ds, "Measurement Group"):
        assert sum(numbers(group, "TI-RADS points")) == numbers(group, "TI-RADS total points")[0]


@pytest.mark.parametrize(
    ("report", "title"),
    [
        (CT, "CT Report"),
        (FreeText("No acute finding.", "Normal chest radiograph.", "DX"), "X-Ray Report"),
        (FreeText("Findings only", "", ""), "Diagnostic Imaging Report"),
    ],
)
@pytest.mark.parametrize("version", [PRELIMINARY, FINAL], ids=["preliminary", "final"])
def test_free_text(tmp_path: Path, report: FreeText, title: str, version: ReportVersion) -> None:
    ds = written(free_text_sr(STUDY, version, report), tmp_path, "free-text")
    assert ds.SOPClassUID == BasicTextSRStorage
    assert ds.ConceptNameCodeSequence[0].CodeMeaning == title
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "2000"
    assert [t for t in texts(ds) if t in (report.findings, report.impression)] == [
        t for t in (report.findings, report.impression) if t
    ]


def test_addendum_points_at_the_version_it_amends(tmp_path: Path) -> None:
    first = written(build_sr(STUDY, FINAL, CT), tmp_path, "v1")
    addendum = ReportVersion(
        "李^明",
        2,
        ReportStatus.PRELIMINARY,
        datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
        predecessor=Predecessor(first.SOPClassUID, first.SOPInstanceUID, first.SeriesInstanceUID, 1),
        series_instance_uid=first.SeriesInstanceUID,
    )
    ds = written(build_sr(STUDY, addendum, FreeText(CT.findings, "更正：考虑炎性结节。", "CT")), tmp_path, "v2")
    reference = ds.PredecessorDocumentsSequence[0]
    assert reference.StudyInstanceUID == STUDY.study_instance_uid
    assert reference.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    sop = reference.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert (sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID) == (first.SOPClassUID, first.SOPInstanceUID)
    assert ds.InstanceNumber == 2 and ds.SOPInstanceUID != first.SOPInstanceUID


def test_chinese_names_and_text_survive(tmp_path: Path) -> None:
    ds = written(build_sr(STUDY, FINAL, THYROID), tmp_path, "chinese")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "张^三"
    assert str(ds.ReferringPhysicianName) == "王^医生"
    observer = named(ds, "Person Observer Name")[0]
    assert str(observer.PersonName) == "李^明"


def test_partial_preliminary_and_plain_names(tmp_path: Path) -> None:
    partial = ReportVersion("Dr Li", 3, ReportStatus.PRELIMINARY, SIGNED, complete=False, language="zh-CN")
    ds = written(build_sr(STUDY, partial, CAROTID), tmp_path, "partial")
    assert ds.CompletionFlag == "PARTIAL"
    assert str(named(ds, "Person Observer Name")[0].PersonName) == "Dr Li^"
    assert coded(ds, "Language of Content Item and Descendants") == ["Chinese (China)"]
    final = ReportVersion("Dr Li", 3, ReportStatus.FINAL, SIGNED, approver="Chen", approved_at=SIGNED)
    ds = written(build_sr(STUDY, final, CAROTID), tmp_path, "plain")
    assert str(ds.VerifyingObserverSequence[0].VerifyingObserverName) == "Chen^"


def test_bad_header_or_version_is_refused() -> None:
    fields = dict(STUDY.__dict__)
    with pytest.raises(InvalidRequest, match="study_instance_uid"):
        StudyHeader(**{**fields, "study_instance_uid": "not-a-uid"})
    with pytest.raises(InvalidRequest, match="patient_birth_date"):
        StudyHeader(**{**fields, "patient_birth_date": "1968-03-04"})
    with pytest.raises(InvalidRequest, match="patient_sex"):
        StudyHeader(**{**fields, "patient_sex": "X"})
    with pytest.raises(InvalidRequest, match="approver"):
        ReportVersion("李^明", 1, ReportStatus.FINAL, SIGNED)
    with pytest.raises(InvalidRequest, match="complete"):
        ReportVersion("李^明", 1, ReportStatus.FINAL, SIGNED, approver="Chen", approved_at=SIGNED, complete=False)
    with pytest.raises(InvalidRequest, match="language"):
        ReportVersion("李^明", 1, ReportStatus.PRELIMINARY, SIGNED, language="fr")


def test_cannot_be_judged_choices_keep_their_own_codes(tmp_path: Path) -> None:
    unclear = {
        **THYROID.nodules[0].to_json(),
        "composition": "cannot_determine",
        "echogenicity": "cannot_determine",
        "margin": "cannot_determine",
    }
    ds = written(thyroid_sr(STUDY, FINAL, ThyroidFindings.from_json({"nodules": [unclear]})), tmp_path, "unclear")
    values = {
        meaning: [i.ConceptCodeSequence[0].CodeValue for i in named(ds, meaning)]
        for meaning in ("TI-RADS composition", "TI-RADS echogenicity", "TI-RADS margin")
    }
    assert values == {
        "TI-RADS composition": ["C-UNDETERMINED"],
        "TI-RADS echogenicity": ["E-UNDETERMINED"],
        "TI-RADS margin": ["M-UNDETERMINED"],
    }
    assert numbers(ds, "TI-RADS total points") == [3.0]
