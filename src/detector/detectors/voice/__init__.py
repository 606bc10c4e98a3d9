"""Synthetic speech detection (TTS, neural vocoders, voice conversion): see model.py."""
