"""DICOM on the server: the object store, ingest, regional patient identity, DICOMweb, C-STORE in and out.

    blobs           content-addressed files under data_dir/dicom (SHA-256 names, atomic writes)
    parsing         raw bytes → the attributes the index needs; refuses non-DICOM and truncated objects
    limits          what an arriving object may claim (pixels, frames, bytes), checked from its header
    identity        each site's patient ID → one regional Patient; safe cross-site linking and merging
    ingest          store_instance(): blob, index, reading-queue intake and forward job in one transaction
    access          who may store into which site, and which sites a reader may see
    multipart       multipart/related read (streamed to disk, parts capped) and written
    stow, qido,     the three DICOMweb services (PS3.18), routed by dicomweb.py under /dicomweb
    wado
    render          one frame → 8-bit grey or RGB → JPEG/PNG (block by block: no full float64 copy)
    transcode       stored object → Explicit VR Little Endian when a client asks for it
    scp             the C-STORE / C-ECHO listener (pynetdicom)
    forward         C-STORE of every stored instance to the regional PACS, retried with backoff
    patient_routes  /api/v1/patients: identities, duplicate candidates, linking, priors

DICOMWEB.md documents every endpoint.
"""
