"""The persistent outbox against a real HTTP server on 127.0.0.1 playing a flaky network and a strict server."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from collections.abc import AsyncIterator, Callable
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from edge_capture.dicom.outbox import MACHINE, Outbox, UploadRejected, UploadState
from edge_capture.dicom.stow import StowClient, StowError
from edge_capture.dicom.ultrasound import build_still
from edge_capture.sealing.keys import Keyring
from edge_capture.sealing.sealed import is_sealed, read_sealed
from edge_capture.sources.synthetic import SyntheticSource
from qc.labels import CaptureLabels
from signaling_server.states import IllegalMove, move
from tests.edge_capture.dicom.conftest import StowServer, context, synthetic_frames
from tests.edge_capture.sealing.damage import cut, flip_byte
from tests.waiting import eventually

BASE_DELAY, MAX_DELAY = 0.01, 0.05


def stills(source: SyntheticSource, count: int) -> list[Dataset]:
    return [build_still(frame, context(), CaptureLabels()) for frame in synthetic_frames(source, count)]


@pytest.fixture
async def make_outbox(
    stow_server: StowServer, tmp_path: Path, spool_keys: Keyring
) -> AsyncIterator[Callable[[], Outbox]]:
    made: list[tuple[Outbox, StowClient]] = []

    def make() -> Outbox:
        client = StowClient(stow_server.url, stow_server.credential)
        outbox = Outbox(tmp_path / "spool", client, keys=spool_keys, base_delay=BASE_DELAY, max_delay=MAX_DELAY)
        made.append((outbox, client))
        return outbox

    yield make
    for outbox, client in made:
        await outbox.close()
        await client.close()


def spooled(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


async def test_enqueue_spools_atomically_then_uploads_and_deletes(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    outbox = make_outbox()
    (ds,) = stills(thyroid, 1)
    uid = str(ds.SOPInstanceUID)
    acknowledged = await outbox.enqueue(ds)
    assert spooled(outbox.folder) == [f"{uid}.dcm"]  # on disk before anything was sent
    assert pydicom.dcmread(BytesIO(read_sealed(outbox.folder / f"{uid}.dcm", outbox.keys))).SOPInstanceUID == uid
    assert outbox.status.pending == 1
    await outbox.start()
    assert await asyncio.wait_for(acknowledged, 5) == uid
    assert spooled(outbox.folder) == [] and list(stow_server.stored) == [uid]
    assert outbox.status.pending == 0 and outbox.status.last_error is None


async def test_retries_through_503s_and_a_dropped_connection_until_acknowledged(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    stow_server.script = ["503", "drop", "503"]
    outbox = make_outbox()
    states: list[tuple[str, UploadState, str | None]] = []
    outbox.add_listener(lambda uid, state, error: states.append((uid, state, error.code if error else None)))
    await outbox.start()
    (ds,) = stills(thyroid, 1)
    uid = str(ds.SOPInstanceUID)
    await asyncio.wait_for(await outbox.enqueue(ds), 5)
    assert stow_server.requests == [[uid]] * 4
    assert [s for _, s, _ in states].count(UploadState.PENDING) == 3
    assert states[-1] == (uid, UploadState.ACKNOWLEDGED, None)
    assert [code for _, _, code in states if code] == ["unavailable", "network_error", "unavailable"]
    assert spooled(outbox.folder) == []


async def test_a_refused_file_is_kept_in_rejected_with_its_reason(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    stow_server.script = ["400"]
    outbox = make_outbox()
    await outbox.start()
    bad, good = stills(thyroid, 2)
    refused = await outbox.enqueue(bad)
    accepted = await outbox.enqueue(good)
    with pytest.raises(UploadRejected) as caught:
        await asyncio.wait_for(refused, 5)
    assert (caught.value.code, caught.value.message) == ("invalid_dicom", "not an ultrasound image")
    await asyncio.wait_for(accepted, 5)
    uid = str(bad.SOPInstanceUID)
    assert spooled(outbox.rejected_folder) == [f"{uid}.dcm", f"{uid}.json"]
    reason = json.loads((outbox.rejected_folder / f"{uid}.json").read_text())
    assert reason["error"] == "invalid_dicom" and reason["status"] == 400
    assert list(stow_server.stored) == [str(good.SOPInstanceUID)]
    assert len(stow_server.requests) == 2  # refused once, never retried
    assert outbox.status.rejected == 1 and outbox.status.pending == 0


async def test_a_duplicate_answered_409_is_acknowledged(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    (ds,) = stills(thyroid, 1)
    stow_server.stored[str(ds.SOPInstanceUID)] = ds  # the server got it before the agent learned so
    outbox = make_outbox()
    await outbox.start()
    assert await asyncio.wait_for(await outbox.enqueue(ds), 5) == ds.SOPInstanceUID
    assert spooled(outbox.folder) == []


async def test_enqueue_twice_is_one_file_and_one_upload(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    outbox = make_outbox()
    (ds,) = stills(thyroid, 1)
    first, second = await asyncio.gather(outbox.enqueue(ds), outbox.enqueue(ds))
    assert first is second and await outbox.enqueue(ds) is first
    assert spooled(outbox.folder) == [f"{ds.SOPInstanceUID}.dcm"]
    await outbox.start()
    await asyncio.wait_for(first, 5)
    assert stow_server.requests == [[str(ds.SOPInstanceUID)]]


async def test_a_restart_uploads_what_the_last_run_left(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    datasets = stills(thyroid, 3)
    stow_server.script = ["ok", "503", "503", "503", "503", "503"]
    first_run = make_outbox()
    failing = asyncio.Event()

    def on_change(uid: str, state: UploadState, error: StowError | None) -> None:
        if error is not None:
            failing.set()

    first_run.add_listener(on_change)
    await first_run.start()
    futures = [await first_run.enqueue(ds) for ds in datasets]
    await asyncio.wait_for(futures[0], 5)
    await asyncio.wait_for(failing.wait(), 5)
    await first_run.close()  # the agent stops with two files pending
    assert first_run.status.pending == 2 and first_run.status.last_error is not None
    (first_run.folder / f".{datasets[1].SOPInstanceUID}.dcm.tmp").write_bytes(b"half a file")  # a crash mid-write
    second_run = make_outbox()
    await second_run.start()
    assert second_run.status.pending == 2
    await asyncio.wait_for(asyncio.gather(*(second_run.acknowledged(str(ds.SOPInstanceUID)) for ds in datasets[1:])), 5)
    assert set(stow_server.stored) == {str(ds.SOPInstanceUID) for ds in datasets}  # nothing lost
    assert spooled(second_run.folder) == []


async def test_a_refused_credential_keeps_files_pending(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    stow_server.script = ["401", "401"]
    outbox = make_outbox()
    await outbox.start()
    (ds,) = stills(thyroid, 1)
    await asyncio.wait_for(await outbox.enqueue(ds), 5)
    assert len(stow_server.requests) == 3 and spooled(outbox.rejected_folder) == []


async def test_backoff_grows_is_capped_and_jittered(
    tmp_path: Path, thyroid: SyntheticSource, spool_keys: Keyring
) -> None:
    delays: list[float] = []

    class Down(StowClient):
        async def store(self, files: object) -> object:  # type: ignore[override]
            raise StowError("network_error", "down", retryable=True)

    class Counting(Outbox):
        async def _pause(self, delay: float) -> None:
            delays.append(delay)
            if len(delays) >= 6:
                raise asyncio.CancelledError

    down = Down("http://127.0.0.1:9", "x")
    outbox = Counting(tmp_path, down, keys=spool_keys, base_delay=1, max_delay=8, jitter=0.5, rng=lambda: 1.0)
    (ds,) = stills(thyroid, 1)
    await outbox.enqueue(ds)
    with pytest.raises(asyncio.CancelledError):
        await outbox._run()
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]  # doubling, capped at 8, halved by the maximal jitter
    assert outbox.status.attempts == 6 and outbox.status.pending == 1


async def test_retry_now_ends_a_backoff(tmp_path: Path, thyroid: SyntheticSource, spool_keys: Keyring) -> None:
    """The link came back: a file waiting out a long backoff is tried at once, from the first delay again."""
    attempts: list[float] = []

    class Down(StowClient):
        async def store(self, files: object) -> object:  # type: ignore[override]
            attempts.append(time.monotonic())
            raise StowError("network_error", "down", retryable=True)

    outbox = Outbox(tmp_path, Down("http://127.0.0.1:9", "x"), keys=spool_keys, base_delay=3600, jitter=0)
    await outbox.start()
    try:
        (ds,) = stills(thyroid, 1)
        await outbox.enqueue(ds)
        await eventually(lambda: len(attempts) == 1, what="the first attempt")
        outbox.retry_now()
        await eventually(lambda: len(attempts) == 2, what="a second attempt long before the hour's backoff")
    finally:
        await outbox.close()


async def test_enqueue_refuses_an_unsafe_uid(tmp_path: Path, thyroid: SyntheticSource, spool_keys: Keyring) -> None:
    outbox = Outbox(tmp_path, StowClient("http://127.0.0.1:9", "x"), keys=spool_keys)
    (ds,) = stills(thyroid, 1)
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):  # pydicom only warns
        ds.SOPInstanceUID = "../../etc"
    with pytest.raises(ValueError, match="not a valid SOP Instance UID"):
        await outbox.enqueue(ds)
    assert spooled(tmp_path) == []


async def test_per_instance_failures_retry_or_reject_by_reason(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    stow_server.script = ["202-fail", "ok", "409-missing"]  # out of resources (A700H); an attribute missing
    outbox = make_outbox()
    await outbox.start()
    busy, unsupported = stills(thyroid, 2)
    retried = await outbox.enqueue(busy)
    await asyncio.wait_for(retried, 5)
    assert stow_server.requests == [[str(busy.SOPInstanceUID)]] * 2
    with pytest.raises(UploadRejected) as caught:
        await asyncio.wait_for(await outbox.enqueue(unsupported), 5)
    assert (caught.value.code, caught.value.message) == ("missing_attribute", "PatientID is missing")


async def test_a_file_the_server_keeps_failing_to_process_is_rejected_not_retried_for_ever(
    stow_server: StowServer, tmp_path: Path, thyroid: SyntheticSource, spool_keys: Keyring
) -> None:
    stow_server.script = ["409-processing", "409-processing", "ok"] + ["409-processing"] * 10
    client = StowClient(stow_server.url, stow_server.credential)
    outbox = Outbox(
        tmp_path, client, keys=spool_keys, base_delay=BASE_DELAY, max_delay=MAX_DELAY, processing_failure_limit=3
    )
    try:
        await outbox.start()
        passing, failing = stills(thyroid, 2)
        await asyncio.wait_for(await outbox.enqueue(passing), 5)  # two 0110H, then stored: a passing trouble
        with pytest.raises(UploadRejected) as caught:
            await asyncio.wait_for(await outbox.enqueue(failing), 5)
    finally:
        await outbox.close()
        await client.close()
    assert caught.value.code == "store_failed" and "3 processing failures in a row" in caught.value.message
    uid = str(failing.SOPInstanceUID)
    assert stow_server.requests[3:] == [[uid]] * 3  # three attempts, then no more
    assert spooled(outbox.rejected_folder) == [f"{uid}.dcm", f"{uid}.json"]
    assert json.loads((outbox.rejected_folder / f"{uid}.json").read_text())["error"] == "store_failed"
    assert outbox.status.pending == 0 and outbox.status.rejected == 1


async def test_a_file_gone_from_the_spool_is_reported_not_retried(
    make_outbox: Callable[[], Outbox], thyroid: SyntheticSource
) -> None:
    outbox = make_outbox()
    (ds,) = stills(thyroid, 1)
    acknowledged = await outbox.enqueue(ds)
    (outbox.folder / f"{ds.SOPInstanceUID}.dcm").unlink()  # someone cleaned the disk
    await outbox.start()
    with pytest.raises(UploadRejected) as caught:
        await asyncio.wait_for(acknowledged, 5)
    assert caught.value.code == "spool_file_missing"
    assert spooled(outbox.rejected_folder) == [f"{ds.SOPInstanceUID}.json"]


@pytest.mark.parametrize(("old", "new"), MACHINE.edges())
def test_every_declared_move_of_an_upload_passes(old: UploadState, new: UploadState) -> None:
    assert move(MACHINE, old, new, entity_id="1.2.3") is new


@pytest.mark.parametrize(
    ("old", "new"),
    [(UploadState.PENDING, UploadState.ACKNOWLEDGED), (UploadState.PENDING, UploadState.REJECTED),
     (UploadState.PENDING, UploadState.PENDING), (UploadState.UPLOADING, UploadState.UPLOADING),
     (UploadState.ACKNOWLEDGED, UploadState.PENDING), (UploadState.REJECTED, UploadState.UPLOADING)],
)
def test_other_moves_of_an_upload_are_refused(old: UploadState, new: UploadState) -> None:
    with pytest.raises(IllegalMove, match=f"a still upload that is {old} cannot become {new}"):
        move(MACHINE, old, new, entity_id="1.2.3")


async def test_the_outbox_moves_a_file_only_as_the_machine_allows(
    make_outbox: Callable[[], Outbox], thyroid: SyntheticSource
) -> None:
    outbox = make_outbox()
    heard: list[UploadState] = []
    outbox.add_listener(lambda uid, state, error: heard.append(state))
    uid = str(stills(thyroid, 1)[0].SOPInstanceUID)
    outbox._register(uid)
    with pytest.raises(IllegalMove) as refused:
        outbox._transition(uid, UploadState.ACKNOWLEDGED)  # not without an upload
    assert refused.value.code == "invalid_transition" and heard == []
    outbox._transition(uid, UploadState.UPLOADING)
    outbox._transition(uid, UploadState.PENDING, StowError("unavailable", "try later", 503, retryable=True))
    assert heard == [UploadState.UPLOADING, UploadState.PENDING] and outbox.status.pending == 1


# -- at rest: the spool is sealed (docs/SECURITY.md §9) -----------------------------------------------------------

PATIENT = ("张^三".encode(), b"TLS-004217")  # the name and ID of tests.edge_capture.dicom.conftest.context()


async def test_a_spooled_still_is_sealed_at_rest_and_sent_as_it_was_taken(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    outbox = make_outbox()
    (ds,) = stills(thyroid, 1)
    uid = str(ds.SOPInstanceUID)
    acknowledged = await outbox.enqueue(ds)
    path = outbox.folder / f"{uid}.dcm"
    on_disk, opened = path.read_bytes(), read_sealed(path, outbox.keys)
    assert opened[128:132] == b"DICM" and all(value in opened for value in PATIENT)  # what was taken...
    assert on_disk[128:132] != b"DICM" and not any(value in on_disk for value in PATIENT)  # ...is not what is kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(outbox.folder.stat().st_mode) == 0o700
    await outbox.start()
    await asyncio.wait_for(acknowledged, 5)
    assert stow_server.received[uid] == opened  # the server gets the plaintext, byte for byte


async def test_a_changed_still_fails_authentication_and_is_kept_never_sent(
    make_outbox: Callable[[], Outbox], stow_server: StowServer, thyroid: SyntheticSource
) -> None:
    outbox = make_outbox()
    changed, short, good = stills(thyroid, 3)
    futures = [await outbox.enqueue(ds) for ds in (changed, short, good)]
    flip_byte(outbox.folder / f"{changed.SOPInstanceUID}.dcm", 5000)
    cut(outbox.folder / f"{short.SOPInstanceUID}.dcm", 32)  # the end record gone: cut short at a record boundary
    await outbox.start()
    for future, message in ((futures[0], "failed authentication"), (futures[1], "has no end")):
        with pytest.raises(UploadRejected) as caught:
            await asyncio.wait_for(future, 5)
        assert caught.value.code == "spool_tampered" and message in caught.value.message
    await asyncio.wait_for(futures[2], 5)
    assert stow_server.requests == [[str(good.SOPInstanceUID)]]  # nothing else went out, not even once
    for ds in (changed, short):
        reason = json.loads((outbox.rejected_folder / f"{ds.SOPInstanceUID}.json").read_text())
        assert reason["error"] == "spool_tampered" and (outbox.rejected_folder / f"{ds.SOPInstanceUID}.dcm").exists()


async def test_a_still_sealed_under_a_key_this_edge_lacks_is_kept_never_sent(
    stow_server: StowServer, thyroid: SyntheticSource, tmp_path: Path
) -> None:
    client = StowClient(stow_server.url, stow_server.credential)
    (ds,) = stills(thyroid, 1)
    await Outbox(tmp_path / "spool", client, keys=Keyring.generate()).enqueue(ds)  # another key, since lost
    outbox = Outbox(tmp_path / "spool", client, keys=Keyring.generate(), base_delay=BASE_DELAY)
    await outbox.start()
    with pytest.raises(UploadRejected) as caught:
        await asyncio.wait_for(outbox.acknowledged(str(ds.SOPInstanceUID)), 5)
    assert caught.value.code == "unknown_spool_key" and stow_server.requests == []
    await outbox.close()
    await client.close()


async def test_a_still_an_older_version_spooled_in_clear_is_sealed_at_start_then_sent(
    stow_server: StowServer, thyroid: SyntheticSource, tmp_path: Path, spool_keys: Keyring
) -> None:
    (ds,) = stills(thyroid, 1)
    uid = str(ds.SOPInstanceUID)
    spool = tmp_path / "spool"
    spool.mkdir()
    clear = BytesIO()
    ds.save_as(clear, enforce_file_format=True)
    (spool / f"{uid}.dcm").write_bytes(clear.getvalue())
    offline = StowClient("http://127.0.0.1:9", "x")  # nobody listens: the file stays
    first = Outbox(spool, offline, keys=spool_keys, base_delay=10.0)
    await first.start()
    kept = (spool / f"{uid}.dcm").read_bytes()
    assert is_sealed(spool / f"{uid}.dcm") and not any(value in kept for value in PATIENT)
    await first.close()
    await offline.close()
    client = StowClient(stow_server.url, stow_server.credential)
    second = Outbox(spool, client, keys=spool_keys, base_delay=BASE_DELAY)
    await second.start()
    assert await asyncio.wait_for(second.acknowledged(uid), 5) == uid
    assert stow_server.received[uid] == clear.getvalue()
    await second.close()
    await client.close()
