"""DICOM at the edge: stills and clips of the source frames, the expert's marks beside them, and their upload.

``labels`` (what the sonographer says the image shows), ``calibration`` (US Region Calibration per scanner
preset), ``ultrasound`` (the Ultrasound Image and Ultrasound Multi-frame Image objects), ``annotations``
(the marks as a Softcopy Presentation State), ``stow`` (the STOW-RS client), ``outbox`` (the persistent upload
spool) and ``stills`` (the glue from the frame ring to the outbox).
"""
