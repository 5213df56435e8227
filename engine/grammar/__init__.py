"""The LOGOS grammar: tags as data (``tags.TAGS``), typed records, encode/decode with validation."""
