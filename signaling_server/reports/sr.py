"""DICOM Structured Reports for a report version (content items from highdicom, the document from pydicom).

    kind       SOP class            root concept                                     template
    carotid    Comprehensive SR     (125100, DCM, "Vascular Ultrasound Procedure Report")   TID 5100
    thyroid    Comprehensive SR     (25010-0, LN, "US Thyroid Report")              TID 2000 layout, not claimed
    free text  Basic Text SR        CT / X-Ray / Ultrasound / Diagnostic Imaging Report    TID 2000

Carotid follows TID 5100: a Summary section (TID 5102), then per side a Findings section (TID 5103) with Finding Site
"Artery of neck" and Laterality, measurement groups per vessel (TID 5104: CCA, ICA, ECA, vertebral; the bulb code is
defined for when bulb measurements exist) and the ICA/CCA ratio at section level. The Doppler angle is a property
of each ICA velocity, as in the vascular measurement groups of PS3.16.
Thyroid nests one Measurement Group per reported nodule under Findings. Diameters: maximal axial = Major Axis,
perpendicular axial = Perpendicular Axis, craniocaudal = Length (SCT).

No standard code exists for IMT, the SRU grade or the ACR TI-RADS lexicon, so they use the private coding scheme
LOCAL_SCHEME ("99TELEUS", declared in CodingSchemeIdentificationSequence): IMT is (IMT, 99TELEUS,
"Intima-media thickness") in mm; the other local codes are in the tables below.

Status: preliminary → VerificationFlag UNVERIFIED, PreliminaryFlag PRELIMINARY; final (approved) → VERIFIED with a
VerifyingObserverSequence naming the approver, PreliminaryFlag FINAL. An addendum lists the version it amends in
PredecessorDocumentsSequence; its content is the whole corrected report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from highdicom.sr import (
    CodeContentItem,
    CodedConcept,
    ContainerContentItem,
    ImageContentItem,
    LanguageOfContentItemAndDescendants,
    NumContentItem,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    TextContentItem,
)
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import (
    RE_VALID_UID,
    BasicTextSRStorage,
    ComprehensiveSRStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from signaling_server.errors import InvalidRequest
from signaling_server.reports import carotid, tirads
from signaling_server.reports.carotid import CarotidFindings, CarotidResult, CarotidSide, Grade, SideGrade
from signaling_server.reports.tirads import NoduleScore, ThyroidFindings, ThyroidResult
from signaling_server.reports.wording import note, say

LOCAL_SCHEME = "99TELEUS"
MANUFACTURER = "teleus"
SERIES_NUMBER = 900
LANGUAGES = {"en-US": "English (United States)", "zh-CN": "Chinese (China)"}
ARTERY_OF_NECK = CodedConcept("119568004", "SCT", "Artery of neck")
VESSELS = {
    "cca": codes.SCT.CommonCarotidArtery,
    "ica": codes.SCT.InternalCarotidArtery,
    "eca": codes.SCT.ExternalCarotidArtery,
    "bulb": codes.SCT.CarotidBulb,
    "vertebral": codes.SCT.VertebralArtery,
}


Concept = Code | CodedConcept


def local(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value, LOCAL_SCHEME, meaning)


IMT = local("IMT", "Intima-media thickness")
IMT_CLASS = local("IMT-CLASS", "IMT category")
SRU_GRADE = local("SRU-GRADE", "ICA stenosis grade (SRU 2003)")
PLAQUE = local("SRU-PLAQUE", "Plaque (SRU category)")
ICA_FLOW = local("ICA-FLOW", "ICA flow")
VERTEBRAL_FLOW = local("VERT-FLOW", "Vertebral flow direction")
SCORING_SYSTEM = local("NODULE-SCORING", "Nodule scoring system")
TIRADS_POINTS = local("TIRADS-POINTS", "TI-RADS points")
TIRADS_TOTAL = local("TIRADS-TOTAL", "TI-RADS total points")
TIRADS_LEVEL = local("TIRADS-LEVEL", "TI-RADS level")
GRADE_CODES = {
    Grade.NORMAL: "SRU-NORMAL",
    Grade.LESS_THAN_50: "SRU-LT50",
    Grade.FROM_50_TO_69: "SRU-50-69",
    Grade.AT_LEAST_70: "SRU-GE70",
    Grade.NEAR_OCCLUSION: "SRU-NEAR-OCCL",
    Grade.TOTAL_OCCLUSION: "SRU-TOTAL-OCCL",
    Grade.NOT_GRADED: "SRU-NOT-GRADED",
}
VERTEBRAL_DIRECTIONS: dict[carotid.VertebralFlow, Concept] = {
    carotid.VertebralFlow.ANTEGRADE: codes.SCT.AntegradeDirection,
    carotid.VertebralFlow.RETROGRADE: codes.SCT.RetrogradeDirection,
    carotid.VertebralFlow.ABSENT: local("FLOW-ABSENT", "Flow absent"),
}
PLAQUE_CODES = {
    carotid.Plaque.NONE: "PLAQUE-NONE",
    carotid.Plaque.VISIBLE: "PLAQUE-VISIBLE",
    carotid.Plaque.LUMEN_NARROWED: "PLAQUE-NARROWED",
    carotid.Plaque.MARKEDLY_NARROWED: "PLAQUE-MARKED",
}
TIRADS_CATEGORIES = {
    "composition": local("TIRADS-COMP", "TI-RADS composition"),
    "echogenicity": local("TIRADS-ECHO", "TI-RADS echogenicity"),
    "shape": local("TIRADS-SHAPE", "TI-RADS shape"),
    "margin": local("TIRADS-MARGIN", "TI-RADS margin"),
    "echogenic_foci": local("TIRADS-FOCI", "TI-RADS echogenic foci"),
}
# Code value of every TI-RADS choice, per category: the "cannot_determine" choices share a value across enums,
# so a flat dict would merge them. CodeValue holds at most 16 characters.
CHOICE_CODES: dict[type[StrEnum], dict[Any, str]] = {
    tirads.Composition: {
        tirads.Composition.CYSTIC: "C-CYSTIC",
        tirads.Composition.SPONGIFORM: "C-SPONGIFORM",
        tirads.Composition.MIXED_CYSTIC_SOLID: "C-MIXED",
        tirads.Composition.SOLID: "C-SOLID",
        tirads.Composition.CANNOT_DETERMINE: "C-UNDETERMINED",
    },
    tirads.Echogenicity: {
        tirads.Echogenicity.ANECHOIC: "E-ANECHOIC",
        tirads.Echogenicity.HYPER_OR_ISOECHOIC: "E-HYPER-ISO",
        tirads.Echogenicity.HYPOECHOIC: "E-HYPO",
        tirads.Echogenicity.VERY_HYPOECHOIC: "E-VERY-HYPO",
        tirads.Echogenicity.CANNOT_DETERMINE: "E-UNDETERMINED",
    },
    tirads.Shape: {tirads.Shape.WIDER_THAN_TALL: "S-WIDER", tirads.Shape.TALLER_THAN_WIDE: "S-TALLER"},
    tirads.Margin: {
        tirads.Margin.SMOOTH: "M-SMOOTH",
        tirads.Margin.ILL_DEFINED: "M-ILL-DEFINED",
        tirads.Margin.LOBULATED_OR_IRREGULAR: "M-LOBULATED",
        tirads.Margin.EXTRATHYROIDAL_EXTENSION: "M-ETE",
        tirads.Margin.CANNOT_DETERMINE: "M-UNDETERMINED",
    },
    tirads.EchogenicFocus: {
        tirads.EchogenicFocus.NONE_OR_COMET_TAIL: "F-NONE",
        tirads.EchogenicFocus.COMET_TAIL: "F-COMET",
        tirads.EchogenicFocus.MACROCALCIFICATIONS: "F-MACRO",
        tirads.EchogenicFocus.PERIPHERAL_CALCIFICATIONS: "F-RIM",
        tirads.EchogenicFocus.PUNCTATE: "F-PUNCTATE",
    },
}


class ReportStatus(StrEnum):
    PRELIMINARY = "preliminary"
    FINAL = "final"  # approved by a senior: verified


@dataclass(frozen=True)
class StudyHeader:
    """The study a report belongs to, in DICOM formats: dates YYYYMMDD, times HHMMSS, names with ^."""

    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    study_instance_uid: str
    accession_number: str
    referring_physician: str
    study_date: str
    study_time: str
    study_id: str = ""

    def __post_init__(self) -> None:
        if len(self.study_instance_uid) > 64 or not RE_VALID_UID.match(self.study_instance_uid):
            raise InvalidRequest(f"study_instance_uid is not a valid UID: {self.study_instance_uid!r}")
        for name in ("patient_birth_date", "study_date"):
            value = getattr(self, name)
            if value and not (len(value) == 8 and value.isdigit()):
                raise InvalidRequest(f"{name} must be YYYYMMDD or empty, got {value!r}")
        if self.patient_sex not in ("", "M", "F", "O"):
            raise InvalidRequest(f"patient_sex must be M, F, O or empty, got {self.patient_sex!r}")
        if len(self.accession_number) > 16 or len(self.study_id) > 16 or len(self.patient_id) > 64:
            raise InvalidRequest("accession_number and study_id hold 16 characters, patient_id 64")


@dataclass(frozen=True)
class Predecessor:
    """The SR of the version an addendum amends."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    version: int


@dataclass(frozen=True)
class ImageRef:
    """An image of the study chosen for the report: referenced under "Key Images" and in the evidence."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    frame: int | None = None  # for a multi-frame image, the frame chosen (from 1)


@dataclass(frozen=True)
class ReportVersion:
    """Who wrote this version, its number and status; `signed_at` becomes the SR's content date and time."""

    author: str
    version: int
    status: ReportStatus
    signed_at: datetime
    approver: str = ""
    approved_at: datetime | None = None
    organization: str = "teleus regional reading centre"
    complete: bool = True
    predecessor: Predecessor | None = None
    language: str = "en-US"
    series_instance_uid: str = ""  # generated when empty
    sop_instance_uid: str = ""  # generated when empty
    images: tuple[ImageRef, ...] = ()  # the images chosen for the report, in order
    institution: str = ""  # the site the study came from (InstitutionName), as on the printed report

    def __post_init__(self) -> None:
        if self.status is ReportStatus.FINAL and (not self.approver or self.approved_at is None):
            raise InvalidRequest("a final report names its approver and approval time")
        if self.status is ReportStatus.FINAL and not self.complete:
            raise InvalidRequest("complete: a final (verified) report must be complete (DICOM allows no partial one)")
        if self.language not in LANGUAGES:
            raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}")
        if self.version < 1:
            raise InvalidRequest("version counts from 1")


@dataclass(frozen=True)
class FreeText:
    """An X-ray or CT report: findings and impression as text; `modality` chooses the document title."""

    findings: str
    impression: str
    modality: str = ""


def _person(name: str) -> str:
    """A DICOM person name: a plain name without ^ is taken as the family name alone."""
    return name if "^" in name or "=" in name else f"{name}^"


def _dt(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + moment.strftime("%z")


def _with(parent: Dataset, children: Sequence[Dataset]) -> Dataset:
    if children:
        parent.ContentSequence = list(children)
    return parent


def _container(name: Concept, children: Sequence[Dataset]) -> Dataset:
    return _with(ContainerContentItem(name, relationship_type="CONTAINS"), children)


def _text(name: Concept, value: str, relationship: str = "CONTAINS") -> Dataset:
    return TextContentItem(name, value, relationship_type=relationship)


def _code(name: Concept, value: Concept, relationship: str = "CONTAINS") -> Dataset:
    return CodeContentItem(name, value, relationship_type=relationship)


def _num(
    name: Concept, value: float, unit: Concept, properties: Sequence[Dataset] = (), relationship: str = "CONTAINS"
) -> Dataset:
    return _with(NumContentItem(name, float(value), unit, relationship_type=relationship), properties)


def _context(version: ReportVersion) -> list[Dataset]:
    """TID 1204 language and TID 1001 observation context: the author as the person observer."""
    language = CodedConcept(version.language, "RFC5646", LANGUAGES[version.language])
    observer = ObserverContext(
        CodedConcept.from_code(codes.DCM.Person),
        PersonObserverIdentifyingAttributes(_person(version.author), organization_name=version.organization),
    )
    return [*LanguageOfContentItemAndDescendants(language), *ObservationContext(observer_person_context=observer)]


def _document(
    study: StudyHeader,
    version: ReportVersion,
    sop_class: str,
    title: Code,
    template: str | None,
    content: Sequence[Dataset],
    description: str,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = version.sop_instance_uid or generate_uid()
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.patient_birth_date
    ds.PatientSex = study.patient_sex
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession_number
    ds.Modality = "SR"
    ds.SeriesInstanceUID = version.series_instance_uid or generate_uid()
    ds.SeriesNumber = SERIES_NUMBER
    ds.SeriesDescription = description
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.Manufacturer = MANUFACTURER
    if version.institution:
        ds.InstitutionName = version.institution[:64]  # LO
    ds.InstanceNumber = version.version
    ds.ContentDate = version.signed_at.strftime("%Y%m%d")
    ds.ContentTime = version.signed_at.strftime("%H%M%S")
    if version.signed_at.tzinfo is not None:
        ds.TimezoneOffsetFromUTC = version.signed_at.strftime("%z")
    ds.CompletionFlag = "COMPLETE" if version.complete else "PARTIAL"
    ds.PreliminaryFlag = "FINAL" if version.status is ReportStatus.FINAL else "PRELIMINARY"
    ds.VerificationFlag = "UNVERIFIED"
    if version.status is ReportStatus.FINAL and version.approved_at is not None:
        ds.VerificationFlag = "VERIFIED"
        observer = Dataset()
        observer.VerifyingObserverName = _person(version.approver)
        observer.VerifyingObserverIdentificationCodeSequence = []
        observer.VerifyingOrganization = version.organization
        observer.VerificationDateTime = _dt(version.approved_at)
        ds.VerifyingObserverSequence = [observer]
    if version.predecessor is not None:
        ds.PredecessorDocumentsSequence = [_predecessor(study, version.predecessor)]
    ds.PerformedProcedureCodeSequence = []
    if version.images:
        ds.CurrentRequestedProcedureEvidenceSequence = [_evidence(study, version.images)]
    if sop_class == ComprehensiveSRStorage:
        scheme = Dataset()
        scheme.CodingSchemeDesignator = LOCAL_SCHEME
        scheme.CodingSchemeName = "teleus local codes (see signaling_server/reports/sr.py)"
        ds.CodingSchemeIdentificationSequence = [scheme]
    root = ContainerContentItem(title, template_id=template)
    for keyword in ("ValueType", "ConceptNameCodeSequence", "ContinuityOfContent", "ContentTemplateSequence"):
        if keyword in root:
            setattr(ds, keyword, getattr(root, keyword))
    ds.ContentSequence = [*_context(version), *content, *_key_images(version.images)]
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _key_images(images: tuple[ImageRef, ...]) -> list[Dataset]:
    """The chosen images, each a "Best illustration of finding", in one "Key Images" container (none: nothing)."""
    if not images:
        return []
    items = [
        ImageContentItem(
            codes.DCM.BestIllustrationOfFinding,
            image.sop_class_uid,
            image.sop_instance_uid,
            referenced_frame_numbers=image.frame,
            relationship_type="CONTAINS",
        )
        for image in images
    ]
    return [_container(codes.DCM.KeyImages, items)]


def _evidence(study: StudyHeader, images: tuple[ImageRef, ...]) -> Dataset:
    """CurrentRequestedProcedureEvidenceSequence: every instance the SR references, by series."""
    by_series: dict[str, list[Dataset]] = {}
    for image in images:
        instance = Dataset()
        instance.ReferencedSOPClassUID = image.sop_class_uid
        instance.ReferencedSOPInstanceUID = image.sop_instance_uid
        by_series.setdefault(image.series_instance_uid, []).append(instance)
    series = []
    for uid, instances in by_series.items():
        item = Dataset()
        item.SeriesInstanceUID = uid
        item.ReferencedSOPSequence = instances
        series.append(item)
    evidence = Dataset()
    evidence.StudyInstanceUID = study.study_instance_uid
    evidence.ReferencedSeriesSequence = series
    return evidence


def _predecessor(study: StudyHeader, predecessor: Predecessor) -> Dataset:
    instance = Dataset()
    instance.ReferencedSOPClassUID = predecessor.sop_class_uid
    instance.ReferencedSOPInstanceUID = predecessor.sop_instance_uid
    series = Dataset()
    series.SeriesInstanceUID = predecessor.series_instance_uid
    series.ReferencedSOPSequence = [instance]
    item = Dataset()
    item.StudyInstanceUID = study.study_instance_uid
    item.ReferencedSeriesSequence = [series]
    return item


def _angle(side: CarotidSide) -> list[Dataset]:
    """The Doppler angle as a property of an ICA velocity (a fresh item for each velocity)."""
    if side.doppler_angle_deg is None:
        return []
    degrees = CodedConcept("deg", "UCUM", "deg")
    return [_num(codes.DCM.DopplerAngle, side.doppler_angle_deg, degrees, (), "HAS PROPERTIES")]


def catalog_language(version: ReportVersion) -> str:
    """The catalog language of an SR's text (its content items are in the language it declares)."""
    return "en" if version.language == "en-US" else version.language


def _vessel_groups(graded: SideGrade, lang: str) -> list[Dataset]:
    """TID 5104 groups of one side: CCA (PSV, IMT), ICA (velocities, plaque, flow, grade, notes), ECA, vertebral."""
    side, cm_s = graded.findings, codes.UCUM.CentimeterPerSecond
    cca: list[Dataset] = []
    if side.cca_psv_cm_s is not None:
        cca.append(_num(codes.LN.PeakSystolicVelocity, side.cca_psv_cm_s, cm_s))
    if side.imt_mm is not None and graded.imt_class is not None:
        cca.append(_num(IMT, side.imt_mm, codes.UCUM.Millimeter))
        cca.append(_code(IMT_CLASS, local(f"IMT-{graded.imt_class.upper()}", f"IMT {graded.imt_class}")))
    ica: list[Dataset] = []
    if side.ica_psv_cm_s is not None:
        ica.append(_num(codes.LN.PeakSystolicVelocity, side.ica_psv_cm_s, cm_s, _angle(side)))
    if side.ica_edv_cm_s is not None:
        ica.append(_num(codes.LN.EndDiastolicVelocity, side.ica_edv_cm_s, cm_s, _angle(side)))
    ica.append(_code(PLAQUE, local(PLAQUE_CODES[side.plaque], carotid.PLAQUE_LABELS[side.plaque])))
    ica.append(_code(ICA_FLOW, local(f"FLOW-{side.flow.upper()}", f"Flow {side.flow}")))
    ica.append(_code(SRU_GRADE, local(GRADE_CODES[graded.grade], graded.grade_label)))
    ica.extend(_text(codes.DCM.Comment, say(lang, note(f"flag.{flag.value}"))) for flag in graded.flags)
    ica.extend(_text(codes.DCM.Comment, say(lang, said)) for said in graded.notes)
    groups = [_container(VESSELS["cca"], cca)] if cca else []
    groups.append(_container(VESSELS["ica"], ica))
    if side.eca_psv_cm_s is not None:
        groups.append(_container(VESSELS["eca"], [_num(codes.LN.PeakSystolicVelocity, side.eca_psv_cm_s, cm_s)]))
    if side.vertebral_flow is not None:
        direction = VERTEBRAL_DIRECTIONS[side.vertebral_flow]
        groups.append(_container(VESSELS["vertebral"], [_code(VERTEBRAL_FLOW, direction)]))
    return groups


def _side_section(graded: SideGrade, lang: str) -> Dataset:
    """One TID 5103 section: Finding Site and Laterality, the vessel groups, then the ICA/CCA ratio."""
    side = graded.findings
    laterality = codes.SCT.Right if side.side is carotid.Side.RIGHT else codes.SCT.Left
    modifiers = [
        _code(codes.SCT.FindingSite, ARTERY_OF_NECK, "HAS CONCEPT MOD"),
        _code(codes.SCT.Laterality, laterality, "HAS CONCEPT MOD"),
    ]
    ratio = [] if side.ratio is None else [_num(codes.LN.ICACCAVelocityRatio, round(side.ratio, 2), codes.UCUM.Ratio)]
    return _container(codes.LN.Findings, [*modifiers, *_vessel_groups(graded, lang), *ratio])


def carotid_sr(
    study: StudyHeader, version: ReportVersion, findings: CarotidFindings, result: CarotidResult | None = None
) -> Dataset:
    """A carotid duplex report after TID 5100, one section per examined side."""
    if result is None:
        result = carotid.grade_exam(findings)
    lang = catalog_language(version)
    summary = [_text(codes.DCM.Comment, side_impression(g, lang)) for g in result.sides]
    if findings.comment:
        summary.append(_text(codes.DCM.Comment, findings.comment))
    sections = [_side_section(g, lang) for g in result.sides]
    content = [
        _code(codes.DCM.ProcedureReported, codes.LN.USCarotidArteriesReport, "HAS CONCEPT MOD"),
        _container(codes.LN.Summary, summary),
        *sections,
    ]
    title = codes.DCM.VascularUltrasoundProcedureReport
    return _document(study, version, ComprehensiveSRStorage, title, "5100", content, "Carotid duplex report")


def side_impression(graded: SideGrade, lang: str) -> str:
    """ "Right ICA: 50–69 % stenosis (SRU)" in the report's language."""
    side = say(lang, note(f"side.{graded.side.value}"))
    return say(lang, note("impression.side", side=side, grade=say(lang, note(f"grade.{graded.grade.value}"))))


def _nodule_group(score: NoduleScore, lang: str) -> Dataset:
    nodule, mm = score.nodule, codes.UCUM.Millimeter
    items: list[Dataset] = [
        _text(codes.DCM.TrackingIdentifier, f"Nodule {score.number}", "HAS OBS CONTEXT"),
        _code(codes.DCM.Finding, codes.SCT.ThyroidNodule),
    ]
    if nodule.location:
        items.append(_text(codes.SCT.FindingSite, nodule.location))
    items += [
        _num(codes.SCT.MajorAxis, nodule.max_axial_mm, mm),
        _num(codes.SCT.PerpendicularAxis, nodule.perpendicular_axial_mm, mm),
        _num(codes.SCT.Length, nodule.craniocaudal_mm, mm),
    ]
    counted = score.points.to_json()
    choices: list[tuple[str, tirads.Choice]] = [
        ("composition", nodule.composition),
        ("echogenicity", nodule.echogenicity),
        ("shape", nodule.shape),
        ("margin", nodule.margin),
    ]
    choices += [("echogenic_foci", f) for f in tirads.EchogenicFocus if f in nodule.echogenic_foci]
    for category, choice in choices:
        # each focus adds its own points unless the nodule scored none there (spongiform)
        worth = counted[category]
        if category == "echogenic_foci" and worth:
            worth = tirads.points(choice)
        points = _num(TIRADS_POINTS, worth, codes.UCUM.NoUnits, (), "HAS PROPERTIES")
        value = local(CHOICE_CODES[type(choice)][choice], tirads.label(choice))
        items.append(_with(_code(TIRADS_CATEGORIES[category], value), [points]))
    items.append(_num(TIRADS_TOTAL, score.total, codes.UCUM.NoUnits))
    items.append(_code(TIRADS_LEVEL, local(score.level, score.level_label)))
    items.append(_text(codes.DCM.Recommendation, recommendation(score, lang)))
    items.extend(_text(codes.DCM.Comment, say(lang, note(f"flag.{flag}"))) for flag in score.flags)
    items.extend(_text(codes.DCM.Comment, say(lang, said)) for said in score.notes)
    return _container(codes.DCM.MeasurementGroup, items)


def recommendation(score: NoduleScore, lang: str = "en") -> str:
    if score.fna_recommended:
        return say(lang, note("recommendation.fna"))
    if score.follow_up_recommended and score.schedule is not None:
        return say(lang, note("recommendation.follow_up", schedule=say(lang, score.schedule)))
    return say(lang, note("recommendation.none"))


def impression(score: NoduleScore, lang: str = "en") -> str:
    """ "Nodule 1 (right lobe): TR4 (5 points), 1.2 cm: FNA recommended" in the report's language."""
    key = "impression.nodule_at" if score.nodule.location else "impression.nodule"
    return say(
        lang,
        note(
            key,
            number=score.number,
            location=score.nodule.location,
            level=score.level,
            points=points_text(score.total, lang),
            size=tirads.size_text(score.nodule),
            recommendation=recommendation(score, lang),
        ),
    )


def points_text(total: int, lang: str = "en") -> str:
    return say(lang, note("points", count=total))


def thyroid_sr(
    study: StudyHeader, version: ReportVersion, findings: ThyroidFindings, result: ThyroidResult | None = None
) -> Dataset:
    """A thyroid report: per reported nodule its TI-RADS categories, points, level, diameters, recommendation."""
    if result is None:
        result = tirads.score_exam(findings)
    lang = catalog_language(version)
    found: list[Dataset] = [_text(SCORING_SYSTEM, say(lang, note(f"system.{result.system.value}")))]
    found += [_nodule_group(score, lang) for score in result.nodules]
    if findings.comment:
        found.append(_text(codes.DCM.Comment, findings.comment))
    said = [impression(score, lang) for score in result.nodules] + [say(lang, n) for n in result.notes]
    content = [
        _container(codes.LN.Findings, found),
        _container(codes.LN.Impressions, [_text(codes.DCM.Impression, line) for line in said]),
    ]
    title = codes.LN.USThyroidReport
    return _document(study, version, ComprehensiveSRStorage, title, None, content, "Thyroid ultrasound report")


def free_text_sr(study: StudyHeader, version: ReportVersion, report: FreeText) -> Dataset:
    """An X-ray, CT or other free-text report as a Basic Text SR after TID 2000."""
    title = {
        "CT": codes.LN.CTReport,
        "CR": codes.LN.XRayReport,
        "DX": codes.LN.XRayReport,
        "US": codes.LN.UltrasoundReport,
    }.get(report.modality.upper(), codes.LN.DiagnosticImagingReport)
    content = [
        _container(heading, [_text(concept, text)])
        for heading, concept, text in (
            (codes.LN.Findings, codes.DCM.Finding, report.findings),
            (codes.LN.Impressions, codes.DCM.Impression, report.impression),
        )
        if text.strip()
    ]
    return _document(study, version, BasicTextSRStorage, title, "2000", content, title.meaning)


ReportContent = ThyroidFindings | CarotidFindings | FreeText


def build_sr(study: StudyHeader, version: ReportVersion, content: ReportContent) -> Dataset:
    """The SR of any report kind, rules evaluated with their defaults."""
    if isinstance(content, ThyroidFindings):
        return thyroid_sr(study, version, content)
    if isinstance(content, CarotidFindings):
        return carotid_sr(study, version, content)
    return free_text_sr(study, version, content)
