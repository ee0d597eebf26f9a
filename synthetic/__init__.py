"""The built-in synthetic 3D heads: heads.py (sampling, ray tracing, signed distance) and
dataset.py (dataset folders and their poses.json)."""
