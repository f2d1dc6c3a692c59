"""Orders (开单): a community site orders an exam at the regional centre; the modality worklist serves it; the
images that arrive with its accession number match it; the approved report completes it (docs/ORDERS.md)."""
