"""LOGOS Desktop GUI (PySide6 + VTK). Thin: all science goes through the ``engine`` package."""
