"""Model files at the bottom of the engine: the GGUF header reader (:mod:`.gguf_info`: check a file,
read its keys and tensor table, hash it) and the errors every model-file reader raises
(:mod:`.errors`: ``ModelFileError`` names the file, the field and the byte).

It imports nothing else of the engine, so both ``engine.models`` (import, convert, quantise,
register) and ``engine.runtime`` (the planner's facts) can use it without importing each other.
"""
