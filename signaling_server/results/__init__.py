"""Results back to the community (issue 12): the site header of printed reports, the community's states of its
exams, the PDF report and the image downloads (docs/RESULTS.md)."""
