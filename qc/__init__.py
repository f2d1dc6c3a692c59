"""Quality control (QC.md, issue 4 §4): was the image good, was the exam complete, was the link good enough.

Pure numerics, one concept per module; each metric is a function array → number with its range and direction
in its docstring, and thresholds are configuration (calibrate per probe and preset):

    fov           the field of view: what changes over frames, US regions, grown from the centre
    exposure      gain saturation, dark fraction, dynamic-range use, TGC balance
    sharpness     Tenengrad, variance of the Laplacian
    contrast      speckle SNR, gCNR, CNR
    contact       no contact (probe in air)
    depth         imaging depth from US Region Calibration
    freeze        frozen runs over a sequence
    frame         the per-frame metric set, fast (a downsampled grey field of view)
    completeness  the exam protocols of CLINICAL.md §3 as data, and the live checklist
    link          link quality from per-second webrtc-stats samples (W3C freezes)
    score         the session score: completeness, five image items, link, OSAUS; weights shown with the total
    labels        what a capture shows (side, structure, plane, mode): the vocabulary the protocols are written in
    regions       the US region calibration (PS3.3 C.8.5.5) as plain records, read from and written to a dataset
    offline       one pass over any `Media` (frames with their times): metrics, freezes, no-contact and dark stretches

Only :mod:`qc.live` knows that frames arrive live: it samples any `FrameSource` (the edge passes its capture ring)
and raises alerts. This package imports no other package of teleus (import-linter, docs/ARCHITECTURE.md); reading
files, recording folders and `teleus qc score` are recordings/ (media, offline, cli).
"""
