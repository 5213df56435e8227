"""Model files: the Hugging Face → GGUF converter, quantiser, registry, parity check and model card.
Public entry points: ``registry.Registry``, ``registry.default_model()``,
``convert.convert_hf_to_gguf(...)``, ``quantize.quantize(...)``. The GGUF reader
(``inspect_gguf``, ``read_header``) and ``ModelFileError`` live in :mod:`engine.modelfiles`.
"""
