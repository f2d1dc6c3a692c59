"""Reports: pure clinical rules (ACR TI-RADS, SRU carotid grading), DICOM SR writers and printable HTML, and the
archiver that stores an approved report's SR before the report is final."""
