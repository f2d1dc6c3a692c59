"""store_instance(): real files in, the index and the queue filled in one transaction, refusals leave no trace."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.appkeys import DB
from signaling_server.db.models import ForwardJob, Instance, Study
from signaling_server.dicomstore import render
from signaling_server.dicomstore.blobs import BLOBS
from signaling_server.dicomstore.ingest import DICOM_STORE, store_instance

from .conftest import Running
from .objects import image, read, real_file, snapshot

REAL = {
    "US1_UNCR.dcm": ((480, 640, 3), 1),
    "color3d_jpeg_baseline.dcm": ((480, 640, 3), 120),
    "gdcm-US-ALOKA-16.dcm": ((480, 640, 3), 1),
    "CT_small.dcm": ((128, 128), 1),
    "MR_small.dcm": ((64, 64), 1),
    "RG1_UNCR.dcm": ((1955, 1841), 1),  # a CR (MONOCHROME1)
}


async def test_real_files_are_indexed_queued_and_render(server: Running) -> None:
    for name, (shape, frames) in REAL.items():
        raw = real_file(name)
        stored = await server.store(raw)
        assert not stored.already_stored
        async with server.app[DB]() as db:
            instance = await db.scalar(select(Instance).where(Instance.sop_uid == stored.sop_uid))
            study = await db.get(Study, stored.study_id)
        assert instance is not None and study is not None
        assert (instance.frames, instance.size, instance.sha256) == (frames, len(raw), stored.sha256)
        assert instance.transfer_syntax_uid == read(raw).file_meta.TransferSyntaxUID
        assert study.state == "matched" and study.patient_id == stored.patient_id and study.due_at is not None
        kept = await server.app[BLOBS].read(stored.sha256)
        assert kept == raw
        with quiet_pydicom():
            pixels = render.display_pixels(ds := read(kept), render.decode_frame(ds, frames - 1))
        assert pixels.shape == shape and pixels.dtype.name == "uint8", name
    async with server.app[DB]() as db:
        targets = {s.modality: (s.examined_at, s.due_at) for s in await db.scalars(select(Study))}
    minutes = {m: (due - examined).total_seconds() / 60 for m, (examined, due) in targets.items() if due and examined}
    assert minutes == {"US": 60, "CT": 60, "MR": 60, "CR": 30}


async def test_idempotent_and_conflicting_stores(server: Running) -> None:
    uid = generate_uid()
    original = image(sop_uid=uid, seed=1)
    first = await server.store(original)
    again = await server.store(original)
    assert again.already_stored and dataclasses.replace(again, already_stored=False) == first
    before = await snapshot(server.app)
    with pytest.raises(errors.InstanceConflict, match="different content"):
        await server.store(image(sop_uid=uid, seed=2))
    with pytest.raises(errors.Forbidden):
        await server.store(original, site="b")  # the same object claimed by another site
    assert await snapshot(server.app) == before
    assert await server.app[BLOBS].read(first.sha256) == original


async def test_a_refusal_inside_the_transaction_removes_the_blob(server: Running) -> None:
    series = generate_uid()
    await server.store(image(series_uid=series))
    before = await snapshot(server.app)
    with pytest.raises(errors.InvalidDicom, match="another study"):
        await server.store(image(series_uid=series, study_uid=generate_uid()))  # found only while indexing
    study_at_a = generate_uid()
    await server.store(image(study_uid=study_at_a))
    before = await snapshot(server.app)
    with pytest.raises(errors.Forbidden, match="another site"):
        await server.store(image(study_uid=study_at_a), site="b")
    assert await snapshot(server.app) == before


async def test_concurrent_objects_of_one_new_study(server: Running) -> None:
    study = generate_uid()
    objects = [image(study_uid=study, patient_id="P-RACE", seed=n) for n in range(6)]
    stored = await asyncio.gather(*(server.store(raw) for raw in objects))
    assert len({s.study_id for s in stored}) == 1 and len({s.patient_id for s in stored}) == 1
    async with server.app[DB]() as db:
        row = await db.get(Study, stored[0].study_id)
    assert row is not None and row.instance_count == 6
    studies = await asyncio.gather(*(server.store(image(patient_id="P-NEW", seed=n)) for n in range(4)))
    assert len({s.study_id for s in studies}) == 4 and len({s.patient_id for s in studies}) == 1  # one new person


async def test_forward_jobs_are_added_with_the_instance(server: Running) -> None:
    woken: list[bool] = []
    store = dataclasses.replace(
        server.app[DICOM_STORE], forward_to="PACS@pacs.example:104", on_forward=lambda: woken.append(True)
    )
    stored = await store_instance(store, image(), site_id=server.world.site_a, received_via="test")
    async with server.app[DB]() as db:
        [job] = await db.scalars(select(ForwardJob))
    assert (job.instance_id, job.destination, job.state, job.attempts) == (
        stored.instance_id,
        "PACS@pacs.example:104",
        "pending",
        0,
    )
    assert woken == [True]


async def test_objects_without_a_patient_id_stay_with_their_study(server: Running) -> None:
    study = generate_uid()
    one = await server.store(image(patient_id="", study_uid=study))
    two = await server.store(image(patient_id="", study_uid=study))
    other = await server.store(image(patient_id=""))
    assert one.patient_id == two.patient_id != other.patient_id
