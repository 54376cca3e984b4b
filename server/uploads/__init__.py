"""Pictures: verifying and re-encoding uploaded images (images.py, in worker processes: workers.py) and
keeping their bytes under their SHA-256 in a store shared by every host (storage.py)."""
