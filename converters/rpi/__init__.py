"""Files copied into a Raspberry Pi bundle by ``converters.deploy``: ``run.py`` (the runner,
numpy + Pillow + ai-edge-litert with bnnzoo's kernels, LCE or onnxruntime) and ``README.md``
(a template filled per bundle). The kernels themselves come from ``converters/litert``."""
