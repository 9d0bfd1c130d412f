"""Deployment: export a trained run to an ONNX bundle, load it, and forecast from fresh readings.

``export.export_bundle`` writes the bundle, ``bundle.Bundle`` runs it with onnxruntime alone,
``predict`` turns a dataset directory into a forecast table (from a bundle or a run directory).
"""
