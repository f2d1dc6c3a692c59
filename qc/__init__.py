"""Quality control: pure image-quality, completeness and link-quality metrics (issue 4, not built yet)."""
