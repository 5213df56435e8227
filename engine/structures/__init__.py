"""Structure files in and out, the headless structure model, pockets and frameworks.

Public entry points (docs/ARCHITECTURE.md): ``io.read_file``, ``io.read_text``, ``io.write_file``,
``atoms.atom_table``, ``pocket.find_pocket``, ``framework.decompose``.
"""
