"""A stored object in the transfer syntax a WADO-RS client asked for.

Objects are kept exactly as they arrived. PS3.18 makes Explicit VR Little Endian the default of
`application/dicom` when the client names no transfer syntax, so that is the one conversion offered: compressed
pixel data is decoded (pydicom's decoders; YBR becomes RGB), Implicit VR and deflated objects are re-encoded.
Anything else answers 406: the client may always ask for `transfer-syntax=*` and get the object as stored.
"""

from __future__ import annotations

import io

from pydicom.uid import UID, ExplicitVRLittleEndian

from recordings.media import quiet_pydicom
from signaling_server import errors
from signaling_server.dicomstore.parsing import read_dataset


def can_convert(stored: str, wanted: str) -> bool:
    """Whether `transcode` can turn an object stored in `stored` into `wanted`."""
    if stored == wanted:
        return True
    uid = UID(stored)
    return wanted == ExplicitVRLittleEndian and (uid.is_little_endian or uid.is_compressed)


def transcode(raw: bytes, wanted: str) -> bytes:
    """`raw` re-encoded in `wanted` (only Explicit VR Little Endian, see above). CPU-bound: run in a thread."""
    with quiet_pydicom():
        ds = read_dataset(raw)
        stored = UID(ds.file_meta.TransferSyntaxUID)
        if stored == wanted:
            return raw
        if not can_convert(stored, wanted):
            raise errors.NotAcceptable(f"cannot convert {stored.name} to {UID(wanted).name}")
        try:
            if stored.is_compressed:
                ds.decompress(generate_instance_uid=False)  # the same object, only re-encoded
            else:
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        except Exception as exc:  # no decoder for this codec here
            raise errors.NotAcceptable(f"cannot decode {stored.name}: {exc}") from None
        out = io.BytesIO()
        ds.save_as(out, implicit_vr=False, little_endian=True, enforce_file_format=True)
        return out.getvalue()
