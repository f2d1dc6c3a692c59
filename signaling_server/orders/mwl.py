"""The Modality Worklist's words (PS3.4 Annex K): an order as a worklist item, C-FIND matching, the answer.

Pure: datasets in, datasets out, no database and no sockets (worklist.py asks the database, scp.py talks DICOM).

Each scheduled order is one item (`item_of`): the Patient (PatientName as given, a valid PN; PatientID the site's
own number; birth date, sex), the Imaging Service Request (AccessionNumber, ReferringPhysicianName and
RequestingPhysician = the ordering doctor, ImagingServiceRequestComments = the clinical information), the
Requested Procedure (RequestedProcedureID = the accession, RequestedProcedureDescription, its priority as
STAT / HIGH / ROUTINE, ReasonForTheRequestedProcedure, StudyInstanceUID for the images to use) and one
ScheduledProcedureStepSequence item (ScheduledStationAETitle, ScheduledProcedureStepStartDate/Time in the
worklist's zone, Modality, ScheduledProcedureStepID, ScheduledProcedureStepDescription, status SCHEDULED, the
site's code as ScheduledProcedureStepLocation; ScheduledPerformingPhysicianName empty).

Matching (`matches`, PS3.4 C.2.2.2) on every key of the query that has a value and that the item holds, the
others being universal:

    dates (DA)      single value, or a range: "20261207-20261231", "-20261231", "20261207-"
    times (TM)      the same, compared to the second ("0800-1200" is 08:00:00 to 12:00:59)
    UIDs (UI)       any of the listed values
    names (PN)      wildcards `*` and `?`, case-insensitive, against the whole value or any one of its forms
    anything else   single value, or wildcards `*` and `?`, case-sensitive
    the sequence    its first item's keys, against the step's item

The answer (`answer`) holds exactly the keys the query asked for (with SpecificCharacterSet ISO_IR 192): the
item's values, or empty for a key the worklist does not keep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

CHARSET = "ISO_IR 192"  # UTF-8: Chinese names survive
SPS = "ScheduledProcedureStepSequence"
DICOM_PRIORITY = {"stat": "STAT", "urgent": "HIGH", "routine": "ROUTINE"}  # RequestedProcedurePriority (CS)


@dataclass(frozen=True)
class WorklistEntry:
    """What the worklist says of one order, in plain words (worklist.py makes it from the rows)."""

    accession: str
    patient_name: str  # a valid PN
    patient_id: str
    birth_date: str
    sex: str
    referring: str  # the ordering doctor, as a PN
    modality: str
    description: str
    reason: str
    clinical_info: str
    priority: str
    study_uid: str
    station_ae: str
    scheduled_at: datetime
    location: str  # the ordering site's code


def _lo(text: str) -> str:
    """A Long String (64 characters, no backslash, one line)."""
    return " ".join(text.replace("\\", "/").split())[:64]


def item_of(entry: WorklistEntry, zone: tzinfo) -> Dataset:
    local = entry.scheduled_at.astimezone(zone)
    step = Dataset()
    step.ScheduledStationAETitle = entry.station_ae
    step.ScheduledProcedureStepStartDate = local.strftime("%Y%m%d")
    step.ScheduledProcedureStepStartTime = local.strftime("%H%M%S")
    step.Modality = entry.modality
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = _lo(entry.description)
    step.ScheduledProcedureStepID = entry.accession
    step.ScheduledProcedureStepStatus = "SCHEDULED"
    step.ScheduledProcedureStepLocation = entry.location[:16]
    step.ScheduledStationName = ""
    item = Dataset()
    item.SpecificCharacterSet = CHARSET
    item.AccessionNumber = entry.accession
    item.ReferringPhysicianName = entry.referring
    item.RequestingPhysician = entry.referring
    item.ImagingServiceRequestComments = entry.clinical_info[:10240]
    item.PatientName = entry.patient_name
    item.PatientID = entry.patient_id
    item.PatientBirthDate = entry.birth_date
    item.PatientSex = entry.sex
    item.RequestedProcedureID = entry.accession
    item.RequestedProcedureDescription = _lo(entry.description)
    item.RequestedProcedurePriority = DICOM_PRIORITY.get(entry.priority, "ROUTINE")
    item.ReasonForTheRequestedProcedure = _lo(entry.reason)
    item.StudyInstanceUID = entry.study_uid
    item.AdmissionID = ""
    item.CurrentPatientLocation = ""
    item.ScheduledProcedureStepSequence = Sequence([step])
    return item


def matches(query: Dataset, item: Dataset) -> bool:
    """Whether `item` answers `query` (the module's docstring says how each kind of key matches)."""
    for element in query:
        if element.keyword == "SpecificCharacterSet" or element.keyword not in item:
            continue
        held = item[element.keyword]
        if element.VR == "SQ":
            wanted = element.value
            if wanted and held.value and not matches(wanted[0], held.value[0]):
                return False
            continue
        if not _empty(element.value) and not _matches_value(element, held.value):
            return False
    return True


def answer(query: Dataset, item: Dataset) -> Dataset:
    """The keys of `query`, with `item`'s values (empty where the item has none)."""
    reply = Dataset()
    reply.SpecificCharacterSet = CHARSET
    for element in query:
        if element.keyword == "SpecificCharacterSet":
            continue
        if element.keyword in item:
            held = item[element.keyword]
            if element.VR == "SQ":
                asked = element.value[0] if element.value else Dataset()
                items = [answer(asked, step) for step in held.value]
                for step in items:
                    del step.SpecificCharacterSet
                reply[element.tag] = DataElement(element.tag, "SQ", Sequence(items))
            else:
                reply[element.tag] = DataElement(element.tag, held.VR, held.value)
        else:
            reply[element.tag] = DataElement(element.tag, element.VR, Sequence() if element.VR == "SQ" else None)
    return reply


def _empty(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, MultiValue | list) and not value)


def _matches_value(key: DataElement, held: object) -> bool:
    text = "" if held is None else str(held)
    if key.VR == "DA":
        return _in_range(str(key.value), text, 8)
    if key.VR == "TM":
        return _in_range(str(key.value), text.split(".")[0], 6)
    if key.VR == "UI":
        wanted = list(key.value) if isinstance(key.value, MultiValue) else [key.value]
        return text in {str(v) for v in wanted}
    wanted_text = str(key.value)
    if key.VR == "PN":
        pattern = wanted_text.rstrip("^ ").casefold()  # trailing empty components say nothing
        return any(_wildcard(pattern, form.rstrip("^ ").casefold()) for form in [text, *text.split("=")])
    return _wildcard(wanted_text, text)


def _wildcard(pattern: str, text: str) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern == text
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


def _in_range(wanted: str, value: str, width: int) -> bool:
    """DA/TM single value or range matching, comparing digits only (a TM "0800" is 08:00)."""
    if not value:
        return False
    digits = re.sub(r"\D", "", value)[:width]
    if "-" not in wanted:
        low = re.sub(r"\D", "", wanted)
        return digits.startswith(low) if width == 6 else digits == low
    start, _, end = wanted.partition("-")
    low = re.sub(r"\D", "", start).ljust(width, "0")
    high = re.sub(r"\D", "", end).ljust(width, "9") if end.strip() else "9" * width
    return low <= digits.ljust(width, "0") <= high
