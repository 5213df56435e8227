"""The engine process (newline-delimited JSON over stdio) and its client."""
