"""Training recipes for the shipped detectors. One loop (loop.py), one exporter (export.py), one recipe per detector."""
