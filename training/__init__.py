"""LOGOS Desktop training: datasets in the grammar, torch training and LoRA, export to GGUF."""
