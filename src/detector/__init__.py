"""Deepfake and synthetic-media detection: faces, voice, text and provenance labels."""

__version__ = "0.1.0"
