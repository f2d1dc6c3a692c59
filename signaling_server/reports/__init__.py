"""Reports: pure clinical rules (ACR TI-RADS, SRU carotid grading), DICOM SR writers and printable HTML."""
