"""The malformed cases of bench/fuzz.py, each with the answer it must get.

WebSocket cases are predicted by the codec itself (`messages.decode`: the error code it raises) or by the rules of
PROTOCOL.md §2 (unknown peer, not allowed, wrong state, already joined, close 1009 / 1007); a case the codec would
accept is drawn again, so no case can write or broadcast. REST and STOW cases are made so that any correct server
refuses them (JSON that is not strict JSON, wrong types for required fields, objects that are not whole DICOM).
"""

from __future__ import annotations

import io
import json
import random
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from signaling_server.signaling import messages as m

SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
CANDIDATE = {"candidate": "candidate:1 1 UDP 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
NAN, INF = float("nan"), float("inf")


@dataclass(frozen=True)
class Expect:
    code: str | None = None  # the `error` reply's code
    close: int | None = None  # or the close code of the socket


@dataclass(frozen=True)
class WsCase:
    kind: str
    payload: str | bytes  # bytes as a TEXT frame: not UTF-8 on purpose
    expect: Expect
    binary: bool = False

    @property
    def shown(self) -> str:
        text = self.payload if isinstance(self.payload, str) else repr(self.payload)
        return text[:160] + ("…" if len(text) > 160 else "")


@dataclass(frozen=True)
class RestCase:
    kind: str
    who: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect_refused: bool = True  # a 2xx is a malformed case accepted

    @property
    def shown(self) -> str:
        return repr(self.body[:120]) if self.body else ""


# ---- values that break things -------------------------------------------------------------------------------------


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def bad_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            0,
            -1,
            1.5,
            2**70,
            "",
            " ",
            "x" * rng.choice([65, 501, 2001, 61 * 1024]),
            [],
            {},
            {"candidate": 5},
            _deep(rng.choice([17, 40, 900])),
            "lone \ud800 surrogate",
            "\udfff",
            "nul \x00 inside",
            "esc \x1b[2J",
            NAN,
            INF,
            -INF,
            "中" * rng.choice([10, 700]),
            "v=0",
            "p-nobody",
        ]
    )


def strict_invalid(rng: random.Random) -> Any:
    """A value that is never strict JSON: NaN, Infinity, a lone surrogate, or too deep."""
    return rng.choice([NAN, INF, -INF, "\ud800", "a\udc00b", {"k\udbff": 1}, _deep(rng.choice([40, 2000]))])


def dumps(value: Any, rng: random.Random) -> str:
    """Lax JSON text as a sloppy client might write it (NaN, surrogates as escapes, deep nesting)."""
    try:
        return json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    except RecursionError:
        return json.dumps(None)


def _wire_text(text: str) -> str:
    """A str that a WebSocket client can send: a raw lone surrogate goes as its JSON escape instead."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ---- WebSocket ---------------------------------------------------------------------------------------------------


def _templates(other: str) -> dict[str, dict[str, Any]]:
    return {
        "join": {"type": "join", "observe": False},
        "offer": {"type": "offer", "to": other, "sdp": SDP},
        "answer": {"type": "answer", "to": other, "sdp": SDP},
        "ice": {"type": "ice", "to": other, "candidate": dict(CANDIDATE)},
        "chat": {"type": "chat", "text": "hello"},
        "captured": {"type": "captured", "id": "c-1", "sop_uid": "1.2.3", "frames": 1, "frame_capture_ms": 1.5e12},
        "capture-failed": {"type": "capture-failed", "id": "c-1", "code": "no_frame", "message": "no frame yet"},
        "chat-history": {"type": "chat-history", "before": 5, "limit": 10},
    }


def _predict(text: str) -> str | None:
    """The code the server's codec refuses `text` with, or None when it would accept it."""
    try:
        m.decode(text)
    except m.SignalError as exc:
        return exc.code
    return None


def _mutated(rng: random.Random, other: str) -> tuple[str, str]:
    kind, message = rng.choice(list(_templates(other).items()))
    keys = [k for k in message if k != "type"]
    roll = rng.random()
    if roll < 0.55 and keys:
        message[rng.choice(keys)] = bad_value(rng)
    elif roll < 0.70 and keys:
        message.pop(rng.choice(keys))
    elif roll < 0.80:
        message["type"] = rng.choice([bad_value(rng), "dance", "JOIN", "chat ", "capture", "capture-status"])
    elif roll < 0.90:
        message[rng.choice(["extra", "\ud800", "type2"])] = strict_invalid(rng)
    elif kind == "ice":
        message["candidate"] = {**CANDIDATE, rng.choice(["candidate", "sdpMid", "sdpMLineIndex"]): bad_value(rng)}
    else:
        message[rng.choice(keys or ["type"])] = strict_invalid(rng)
    return kind, _wire_text(dumps(message, rng))


def _broken_frame(rng: random.Random, other: str) -> str:
    valid = json.dumps(rng.choice(list(_templates(other).values())))
    return rng.choice(
        [
            valid[: rng.randrange(0, len(valid))],
            "\ufeff" + valid,
            rng.choice(["[]", "null", "1", '"join"', "true", "{}", "[{}]"]),
            "[" * rng.choice([20, 1000, 30000]) + "]" * rng.choice([0, 20]),
            '{"type": "join", "a": ' + "{" * 5000,
            rng.choice(["NaN", "-Infinity", '{"type": NaN}', '{"type": "chat", "text": 1e999}']),
            "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(1, 200))),
            valid.replace('"', "'"),
            valid + "garbage",
            "",
        ]
    )


OTHER = "@OTHER@"  # replaced when sent by the other fuzzing socket's peer id of the moment (it changes on rejoin)


def _protocol(rng: random.Random, sender: str) -> tuple[str, str, str]:
    """(kind, text, code) of a well-formed message the room's rules refuse."""
    other = OTHER
    choices = [
        ("unknown-peer", {"type": "ice", "to": "p-nobody", "candidate": None}, "unknown_peer"),
        ("already-joined", {"type": "join"}, "already_joined"),
        ("wrong-state", {"type": "answer", "to": other, "sdp": SDP}, "wrong_state"),
    ]
    if sender != "edge":
        choices += [
            ("page-offer", {"type": "offer", "to": other, "sdp": SDP}, "not_allowed"),
            ("page-captured", {"type": "captured", "id": "c", "sop_uid": "1.2", "frames": 1}, "not_allowed"),
            ("page-capture-failed", {"type": "capture-failed", "id": "c", "code": "x", "message": "y"}, "not_allowed"),
        ]
    kind, message, code = rng.choice(choices)
    return kind, json.dumps(message), code


def ws_case(rng: random.Random, sender: str, other: str) -> WsCase:
    """One malformed WebSocket case for `sender` ("edge" or "sono"); `other` is the other fuzzing peer's id."""
    roll = rng.random()
    if roll < 0.02:
        text = json.dumps({"type": "chat", "text": "中" * rng.randrange(22_000, 40_000)}, ensure_ascii=False)
        return WsCase("over-64-kib", text, Expect(close=1009))
    if roll < 0.04:
        raw = rng.choice([b"\xff\xfe", b'{"type": "chat", "text": "\xed\xa0\x80"}', b'{"type": "join"}\xc3'])
        return WsCase("not-utf8", raw, Expect(close=1007))
    if roll < 0.08:
        return WsCase("binary", rng.randbytes(rng.randrange(1, 64)), Expect("bad_json"), binary=True)
    if roll < 0.22:
        kind, text, code = _protocol(rng, sender)
        return WsCase(f"protocol-{kind}", text, Expect(code))
    for _ in range(20):
        if roll < 0.37:
            kind, text = "frame", _broken_frame(rng, other)
        else:
            kind, text = _mutated(rng, other)
            kind = f"mutated-{kind}"
        code = _predict(text)
        if code is not None and len(text.encode("utf-8")) <= m.MAX_MESSAGE_BYTES:
            return WsCase(kind, text, Expect(code))
    text = "[" * 100 + "]" * 100
    return WsCase("frame", text, Expect("bad_json"))


# ---- REST ----------------------------------------------------------------------------------------------------------


def _rest_bodies(cid: str) -> list[tuple[str, str, dict[str, Any], tuple[str, ...]]]:
    """(who, path, a valid body, fields whose wrong type is refused for sure)."""
    patient = {"id": "P-F2", "name": "Fuzz^Two", "sex": "F", "birth_date": "1970-01-01"}
    return [
        ("sono", "api/v1/consultations", {"exam_type": "thyroid", "patient": patient}, ("exam_type", "patient")),
        ("sono", f"api/v1/consultations/{cid}/captures", {"kind": "still", "labels": {}}, ("kind",)),
        ("sono", "api/v1/studies", {"patient": patient, "accession": "A1", "modality": "US"}, ("patient",)),
        ("sono", "api/v1/auth/tokens", {"label": "script"}, ("label",)),
        ("expert", "api/v1/reports/preview", {"kind": "free_text", "content": {"impression": "x"}}, ("kind",)),
        ("edge", "api/v1/recordings", {"consultation_id": cid}, ("consultation_id",)),
    ]


def _bad_body(rng: random.Random, valid: dict[str, Any], typed: tuple[str, ...]) -> tuple[str, bytes]:
    roll = rng.random()
    if roll < 0.35:
        body = json.loads(json.dumps(valid))
        target = body
        if rng.random() < 0.3 and isinstance(body.get("patient"), dict):
            target = body["patient"]
        target[rng.choice([*target, "extra"])] = strict_invalid(rng)
        return "strict-json", dumps(body, rng).encode("utf-8", "surrogatepass")
    if roll < 0.55 and typed:
        body = dict(valid)
        body[rng.choice(typed)] = rng.choice([5, [], [1], True, {"a": 1}, 1.5])
        return "wrong-type", json.dumps(body).encode()
    return "raw", rng.choice(
        [
            b"\xff\xfe\x00",
            b'{"exam_type": "thyroid"',
            b"[1, 2]",
            b"null",
            b'"a string"',
            b"NaN",
            b'{"a": 1}' + b" garbage",
            b"\xef\xbb\xbf{}",
            b'{"label": "\xed\xa0\x80"}',
            b"{" * 5000,
            b"[" * 100_000,
            b'{"a": "' + b"x" * (1_100_000) + b'"}',  # over the 1 MiB body limit
            rng.randbytes(rng.randrange(1, 300)),
        ]
    )


def _query(rng: random.Random, cid: str) -> tuple[str, str]:
    junk = rng.choice(["", "x", "-1", "0", "1e9", "99999999999999999999999", "%00", "%ED%A0%80", "a" * 500, "'", "[]"])
    return rng.choice(
        [
            ("sono", f"api/v1/consultations/{cid}/chat?limit={junk}&before={junk}"),
            ("sono", f"api/v1/consultations?state={junk}"),
            ("sono", f"api/v1/studies?modality={junk}&state={junk}&priority={junk}&overdue={junk}&site={junk}"),
            ("sono", f"api/v1/findings?state={junk}"),
            ("expert", f"api/v1/qc/dashboard?from={junk}&to={junk}&site={junk}"),
            ("expert", f"api/v1/recordings?site={junk}&state={junk}"),
            ("sono", f"api/v1/consultations/{junk or 'x'}"),
            ("sono", f"api/v1/studies/{junk or 'x'}"),
            ("expert", f"api/v1/reports/{junk or 'x'}/print"),
            ("expert", f"dicomweb/studies?PatientID={junk}&StudyDate={junk}&limit={junk}&offset={junk}"),
            ("expert", f"dicomweb/studies/{junk or '1.2'}/series/{junk or '3'}/instances/{junk or '4'}/rendered"),
            ("edge", "api/v1/devices/me/consultations"),
        ]
    )


def rest_cases(rng: random.Random, cid: str, other_cid: str) -> list[RestCase]:
    """One REST case (as a one-item list): a refused JSON body, or a GET with odd parameters."""
    if rng.random() < 0.7:
        who, path, valid, typed = rng.choice(_rest_bodies(rng.choice([cid, cid, other_cid])))
        kind, body = _bad_body(rng, valid, typed)
        content_type = rng.choice(["application/json", "application/json; charset=utf-8", "text/plain"])
        return [RestCase(f"body-{kind}", who, "POST", path, body, {"Content-Type": content_type})]
    who, path = _query(rng, cid)
    return [RestCase("query", who, "GET", path, expect_refused=False)]


# ---- STOW-RS ------------------------------------------------------------------------------------------------------


def _uid(rng: random.Random) -> str:
    return f"2.25.{uuid.UUID(int=rng.getrandbits(128)).int}"


def dicom_image(rng: random.Random, *, study_uid: str | None = None, drop: str = "", **values: str) -> bytes:
    """A small, whole ultrasound image with fresh UIDs (a field may be dropped or set to anything)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid values are the point
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = US_IMAGE
        ds.SOPInstanceUID = _uid(rng)
        ds.StudyInstanceUID = study_uid or _uid(rng)
        ds.SeriesInstanceUID = _uid(rng)
        ds.PatientName, ds.PatientID, ds.PatientSex = "Fuzz^Patient", "P-F1", "F"
        ds.Modality, ds.AccessionNumber, ds.StudyDate = "US", "ACC-F", "20260101"
        pixels = np.frombuffer(rng.randbytes(16 * 16), np.uint8).reshape(16, 16)
        ds.set_pixel_data(pixels, "MONOCHROME2", 8, generate_instance_uid=False)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        if drop:
            delattr(ds, drop)
        out = io.BytesIO()
        pydicom.dcmwrite(out, ds, enforce_file_format=True)
        return out.getvalue()


def multipart(parts: list[bytes | tuple[str, bytes]], boundary: str | None = None) -> tuple[str, bytes]:
    boundary = boundary or uuid.uuid4().hex
    chunks = []
    for part in parts:
        kind, data = part if isinstance(part, tuple) else ("application/dicom", part)
        chunks += [f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return f'multipart/related; type="application/dicom"; boundary={boundary}', b"".join(chunks)


def _refused_object(rng: random.Random, kind: str) -> bytes:
    if kind == "cut":
        raw = dicom_image(rng)
        return raw[: rng.randrange(0, len(raw) - 1)]
    if kind == "no-dicm":
        raw = bytearray(dicom_image(rng))
        raw[128 + rng.randrange(4)] ^= 0x20
        return bytes(raw)
    if kind == "no-uid":
        return dicom_image(rng, drop=rng.choice(["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"]))
    if kind == "bad-uid":
        bad = rng.choice(["1.2.abc", "1." + "9" * 70, "1.2.3\\4.5", "1.2.3 4"])
        return dicom_image(rng, **{rng.choice(["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"]): bad})
    if kind == "trailing":
        return dicom_image(rng) + rng.randbytes(rng.randrange(1, 64))
    if kind == "meta-mismatch":  # the file meta's MediaStorageSOPInstanceUID (written first) is not the object's
        sop = _uid(rng)
        raw = dicom_image(rng, SOPInstanceUID=sop)
        other = sop[:-1] + ("1" if sop[-1] != "1" else "2")
        meta = raw.index(sop.encode())
        return raw[:meta] + other.encode() + raw[meta + len(sop) :]
    return rng.randbytes(rng.randrange(1, 2048))  # garbage


def stow_case(rng: random.Random, study_uid: str) -> RestCase:
    """A STOW-RS request every part of which must be refused (or the whole body)."""
    kind = rng.choice(
        [
            "cut",
            "no-dicm",
            "no-uid",
            "bad-uid",
            "trailing",
            "meta-mismatch",
            "garbage",
            "text-part",
            "framing",
            "study-mismatch",
        ]
    )
    path = "dicomweb/studies"
    if kind == "text-part":
        content_type, body = multipart([("text/plain", dicom_image(rng))])
    elif kind == "study-mismatch":
        content_type, body = multipart([dicom_image(rng)])
        path = f"dicomweb/studies/{study_uid}"
    elif kind == "framing":
        content_type, body = _bad_framing(rng)
    else:
        content_type, body = multipart([_refused_object(rng, kind) for _ in range(rng.randrange(1, 3))])
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    return RestCase(f"stow-{kind}", "edge", "POST", path, body, headers)


def _bad_framing(rng: random.Random) -> tuple[str, bytes]:
    image = dicom_image(rng)
    content_type, body = multipart([image], boundary="fuzzboundary")
    return rng.choice(
        [
            (content_type.replace("fuzzboundary", "otherboundary"), body),
            (content_type, body[: -len("--fuzzboundary--\r\n")]),
            (content_type, b"--fuzzboundary--\r\n"),
            (content_type, body.replace(b"Content-Type: application/dicom", b"Content-Type application/dicom")),
            ('multipart/related; type="application/dicom"', body),
            ('multipart/related; type="application/json"; boundary=fuzzboundary', body),
            ("multipart/mixed; boundary=fuzzboundary", body),
            ("application/dicom", image),
            (content_type, rng.randbytes(70 * 1024)),
            ('multipart/related; boundary="' + "b" * 80 + '"', body),
        ]
    )
