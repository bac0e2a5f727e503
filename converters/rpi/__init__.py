"""Files copied into a Raspberry Pi bundle by ``converters.deploy``: ``run.py`` (the runner,
numpy + Pillow + LCE or onnxruntime) and ``README.md`` (a template filled per bundle)."""
