"""VTK renderers: each turns an ``AtomTable`` (engine.structures.atoms) into actors (a ``Layer``)."""
