"""The worklist's words without sockets: an order as an MWL item, each kind of key matched as PS3.4 C.2.2.2 says,
and an answer holding exactly the keys asked for."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from signaling_server.orders import mwl

SHANGHAI = ZoneInfo("Asia/Shanghai")
ENTRY = mwl.WorklistEntry(
    accession="RC261208000001", patient_name="Wang^Fang=王^芳", patient_id="MZ-2", birth_date="19500102", sex="M",
    referring="李^医生", modality="DX", description="胸部正位片", reason="咳嗽两周\\发热", clinical_info="",
    priority="stat",
    study_uid="1.2.826.0.1.3680043.8.498.1", station_ae="NORTH_CR",
    scheduled_at=datetime(2026, 12, 9, 6, 0, tzinfo=UTC), location="north",
)  # fmt: skip


def _query(step: dict[str, str] | None = None, **keys: str) -> Dataset:
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    if step is not None:
        item = Dataset()
        for keyword, value in step.items():
            setattr(item, keyword, value)
        query.ScheduledProcedureStepSequence = Sequence([item])
    return query


def test_an_order_is_an_item_in_the_worklists_zone_with_its_priority() -> None:
    item = mwl.item_of(ENTRY, SHANGHAI)
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == ("20261209", "140000")
    assert item.RequestedProcedurePriority == "STAT" and item.SpecificCharacterSet == "ISO_IR 192"
    assert item.ReasonForTheRequestedProcedure == "咳嗽两周/发热"  # no backslash in a single value
    assert step.ScheduledProcedureStepStatus == "SCHEDULED" and step.ScheduledProcedureStepLocation == "north"


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        (_query(), True),  # universal
        (_query(PatientName=""), True),
        (_query(PatientName="wang*"), True),  # wildcard, case-insensitive for names
        (_query(PatientName="WANG^FANG"), True),
        (_query(PatientName="王*"), True),  # any one form of the name
        (_query(PatientName="王^芳"), True),
        (_query(PatientName="Wan?^Fang"), True),
        (_query(PatientName="Li*"), False),
        (_query(PatientID="MZ-2"), True),
        (_query(PatientID="mz-2"), False),  # not a name: case-sensitive
        (_query(PatientID="MZ-*"), True),
        (_query(AccessionNumber="RC261208000001"), True),
        (_query(StudyInstanceUID="1.2.3\\1.2.826.0.1.3680043.8.498.1"), True),  # list of UIDs
        (_query(StudyInstanceUID="1.2.3"), False),
        (_query({"Modality": "DX"}), True),
        (_query({"Modality": "US"}), False),
        (_query({"ScheduledStationAETitle": "NORTH_CR"}), True),
        (_query({"ScheduledStationAETitle": "RIVER_US"}), False),
        (_query({"ScheduledProcedureStepStartDate": "20261209"}), True),
        (_query({"ScheduledProcedureStepStartDate": "20261208"}), False),
        (_query({"ScheduledProcedureStepStartDate": "20261201-20261231"}), True),
        (_query({"ScheduledProcedureStepStartDate": "-20261209"}), True),
        (_query({"ScheduledProcedureStepStartDate": "20261210-"}), False),
        (_query({"ScheduledProcedureStepStartTime": "1400"}), True),
        (_query({"ScheduledProcedureStepStartTime": "1200-1400"}), True),  # to 14:00:59
        (_query({"ScheduledProcedureStepStartTime": "0800-1359"}), False),
        (_query({"Modality": "DX", "ScheduledProcedureStepStartDate": "20261209"}, PatientName="Wang*"), True),
        (_query({"Modality": "DX"}, PatientName="Li*"), False),  # every key must match
        (_query(PatientWeight="70"), True),  # a key the worklist does not keep: universal
    ],
)
def test_each_kind_of_key_matches_as_the_standard_says(query: Dataset, wanted: bool) -> None:
    assert mwl.matches(query, mwl.item_of(ENTRY, SHANGHAI)) is wanted


def test_the_answer_holds_exactly_the_keys_asked_for() -> None:
    step = {"Modality": "", "ScheduledStationAETitle": ""}
    query = _query(step, PatientName="", AccessionNumber="", PatientWeight="")
    reply = mwl.answer(query, mwl.item_of(ENTRY, SHANGHAI))
    assert [e.keyword for e in reply] == [
        "SpecificCharacterSet", "AccessionNumber", "PatientName", "PatientWeight", "ScheduledProcedureStepSequence"
    ]  # fmt: skip
    assert str(reply.PatientName) == "Wang^Fang=王^芳" and reply.PatientWeight is None
    [step] = reply.ScheduledProcedureStepSequence
    assert [e.keyword for e in step] == ["Modality", "ScheduledStationAETitle"]
    assert (step.Modality, step.ScheduledStationAETitle) == ("DX", "NORTH_CR")
