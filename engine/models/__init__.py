"""Model files: GGUF import and check, the Hugging Face → GGUF converter, quantiser, registry,
parity check. Public entry points: ``registry.Registry``, ``registry.default_model()``,
``convert.convert_hf_to_gguf(...)``, ``quantize.quantize(...)``, ``gguf_info.inspect_gguf(...)``.
"""
