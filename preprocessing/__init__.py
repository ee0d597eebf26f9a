"""Turning a folder of photos into a pi-GAN training set: find, align and crop faces, estimate poses, fit the camera."""
