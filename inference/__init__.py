"""Inference on a trained generator: rendering views and videos, inversion, meshing."""
