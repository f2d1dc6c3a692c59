"""QIDO-RS through the real app: the matching keys, paging, and what each level answers."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pydicom.uid import generate_uid

from signaling_server import errors
from signaling_server.dicomstore.qido import STUDY_KEYS, parse_query

from .conftest import Running
from .objects import image, value

STUDY_UID, SERIES_UID, INSTANCE_UID = "0020000D", "0020000E", "00080018"


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any, Any]:
    async with session.get(url, headers={"Accept": "application/dicom+json"}) as response:
        return response.status, await response.json(content_type=None), response.headers


def _uids(found: list[dict[str, Any]], tag: str = STUDY_UID) -> set[str]:
    return {value(item, tag) for item in found}


async def test_study_search_matches_the_common_keys(server: Running) -> None:
    zhang = generate_uid()
    await server.store(image(patient_id="P-100", name="Zhang^San=张^三", study_uid=zhang, study_date="20250301"))
    ct = generate_uid()
    await server.store(
        image(patient_id="P-200", name="Li^Si", modality="CT", study_uid=ct, accession="ACC-CT", study_date="20250415")
    )
    cr = generate_uid()
    await server.store(image(patient_id="P-300", name="Wang^Wu", modality="CR", study_uid=cr, study_date="20240101"))
    expert = await server.bearer("expert")
    url = server.base + "/dicomweb/studies"
    cases = {
        "": {zhang, ct, cr},
        "?PatientID=P-200": {ct},
        "?00100020=P-300": {cr},
        "?PatientName=zhang*": {zhang},
        "?PatientName=*Si": {ct},
        "?PatientName=W?ng^Wu": {cr},
        "?StudyDate=20250101-": {zhang, ct},
        "?StudyDate=-20250331": {zhang, cr},
        "?StudyDate=20250301-20250415": {zhang, ct},
        "?StudyDate=20250415": {ct},
        "?AccessionNumber=ACC-CT": {ct},
        "?ModalitiesInStudy=CR": {cr},
        "?ModalitiesInStudy=CT,US": {zhang, ct},
        f"?StudyInstanceUID={zhang},{cr}": {zhang, cr},
        "?PatientSex=F&PatientBirthDate=19700101": {zhang, ct, cr},
    }
    for query, expected in cases.items():
        status, found, _ = await _get(expert, url + query)
        assert status == 200 and _uids(found) == expected, query
    _, found, headers = await _get(expert, url + "?StudyDate=&limit=2&offset=0")
    assert [value(s, STUDY_UID) for s in found] == [ct, zhang]  # newest first
    _, page2, _ = await _get(expert, url + "?limit=2&offset=2")
    assert _uids(page2) == {cr}
    one = next(s for s in found if value(s, STUDY_UID) == zhang)
    assert one["00100010"]["Value"][0] == {"Alphabetic": "Zhang^San", "Ideographic": "张^三"}
    assert value(one, "00201206") == 1 and value(one, "00201208") == 1 and one["00080061"]["Value"] == ["US"]
    assert value(one, "00081190") == f"{server.base}/dicomweb/studies/{zhang}"
    status, _, headers = await _get(expert, url + "?ReferringPhysicianName=X")
    assert status == 200 and "ReferringPhysicianName" in headers["Warning"]
    for bad in ("?NotAnAttribute=1", "?StudyDate=2025", "?limit=0", "?offset=-1"):
        status, error, _ = await _get(expert, url + bad)
        assert (status, error["error"]) == (400, "invalid_request"), bad
    async with expert.get(url, headers={"Accept": "application/xml"}) as response:
        assert response.status == 406 and (await response.json())["error"] == "not_acceptable"


async def test_series_and_instance_levels(server: Running) -> None:
    study, us, sr = generate_uid(), generate_uid(), generate_uid()
    first = await server.store(image(study_uid=study, series_uid=us))
    await server.store(image(study_uid=study, series_uid=us, seed=3))
    ct_series = await server.store(image(study_uid=study, series_uid=sr, modality="CT"))
    expert = await server.bearer("expert")
    base = f"{server.base}/dicomweb/studies/{study}"
    _, series, _ = await _get(expert, base + "/series")
    assert _uids(series, SERIES_UID) == {us, sr}
    counts = {value(s, SERIES_UID): value(s, "00201209") for s in series}
    assert counts == {us: 2, sr: 1}
    _, only_ct, _ = await _get(expert, base + "/series?Modality=CT")
    assert _uids(only_ct, SERIES_UID) == {sr}
    _, instances, _ = await _get(expert, base + f"/series/{us}/instances")
    assert len(instances) == 2 and value(instances[0], "00280010") == 48 and value(instances[0], "00280011") == 64
    assert value(instances[0], "00083002") == "1.2.840.10008.1.2.1"
    _, all_instances, _ = await _get(expert, base + "/instances")
    assert len(all_instances) == 3
    _, one, _ = await _get(expert, base + f"/instances?SOPInstanceUID={first.sop_uid}")
    assert _uids(one, INSTANCE_UID) == {first.sop_uid}
    _, ct_only, _ = await _get(expert, base + "/instances?Modality=CT")
    assert _uids(ct_only, INSTANCE_UID) == {ct_series.sop_uid}
    for missing in (f"/dicomweb/studies/{generate_uid()}/series", f"/dicomweb/studies/{study}/series/1.2.3/instances"):
        status, error, _ = await _get(expert, server.base + missing)
        assert (status, error["error"]) == (404, "not_found")


def test_query_parsing_rules() -> None:
    q = parse_query(
        {"PatientID": "P1", "00080020": "20250101-", "limit": "5000", "offset": "3", "StudyTime": ""}, STUDY_KEYS
    )
    assert q.matches == {"PatientID": "P1", "StudyDate": "20250101-"}
    assert (q.limit, q.offset, q.ignored) == (1000, 3, ("StudyTime",))
    with pytest.raises(errors.InvalidRequest, match="not a DICOM attribute"):
        parse_query({"Nonsense": "1"}, STUDY_KEYS)
