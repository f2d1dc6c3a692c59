"""The routes under /dicomweb as a third-party client uses them: dicomweb-client stores, searches, retrieves."""

from __future__ import annotations

import asyncio

from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from .conftest import Running
from .objects import image, read, real_file


async def test_dicomweb_client_round_trip(server: Running) -> None:
    url = server.base + "/dicomweb"
    device = DICOMwebClient(url=url, headers={"Authorization": f"Bearer {server.world.device_a_credential}"})
    reader = DICOMwebClient(url=url, headers={"Authorization": f"Bearer {await server.token('expert')}"})
    still, cine = read(real_file("US1_UNCR.dcm")), read(real_file("color3d_jpeg_baseline.dcm"))
    mine = read(image(patient_id="DWC-1", name="Zhang^San=张^三", study_uid=generate_uid()))

    answer = await asyncio.to_thread(device.store_instances, [still, cine, mine])
    assert len(answer.ReferencedSOPSequence) == 3 and "FailedSOPSequence" not in answer, answer

    studies = await asyncio.to_thread(reader.search_for_studies, search_filters={"PatientID": "DWC-1"})
    assert [s["0020000D"]["Value"][0] for s in studies] == [mine.StudyInstanceUID]
    everything = await asyncio.to_thread(reader.search_for_studies)
    assert len(everything) == 3
    series = await asyncio.to_thread(reader.search_for_series, cine.StudyInstanceUID)
    assert series[0]["0020000E"]["Value"] == [cine.SeriesInstanceUID]
    instances = await asyncio.to_thread(reader.search_for_instances, cine.StudyInstanceUID, cine.SeriesInstanceUID)
    assert instances[0]["00280008"]["Value"] == [120]

    back = await asyncio.to_thread(
        reader.retrieve_instance, cine.StudyInstanceUID, cine.SeriesInstanceUID, cine.SOPInstanceUID
    )
    assert back.file_meta.TransferSyntaxUID == cine.file_meta.TransferSyntaxUID
    assert back.PixelData == cine.PixelData and back.NumberOfFrames == 120
    named = await asyncio.to_thread(
        reader.retrieve_instance, mine.StudyInstanceUID, mine.SeriesInstanceUID, mine.SOPInstanceUID
    )
    assert str(named.PatientName) == "Zhang^San=张^三"
    metadata = await asyncio.to_thread(reader.retrieve_study_metadata, still.StudyInstanceUID)
    assert metadata[0]["00080018"]["Value"] == [still.SOPInstanceUID] and "7FE00010" not in metadata[0]
    whole = await asyncio.to_thread(reader.retrieve_study, mine.StudyInstanceUID)
    assert [ds.SOPInstanceUID for ds in whole] == [mine.SOPInstanceUID]
    jpeg = await asyncio.to_thread(
        reader.retrieve_instance_rendered,
        still.StudyInstanceUID,
        still.SeriesInstanceUID,
        still.SOPInstanceUID,
        media_types=("image/jpeg",),
    )
    assert jpeg[:2] == b"\xff\xd8"
