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
    media         frames from files (MP4 via PyAV, DICOM via pydicom)
    offline       one pass over a file: metrics, freezes, no-contact and dark stretches
    session       a whole session's report from a file or a recording folder
    cli           `teleus qc score FILE`

Only :mod:`qc.live` knows that frames arrive live: it samples the capture ring and raises alerts.
"""
