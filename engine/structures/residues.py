"""Residue vocabularies: amino acids, waters, ions, additives (what is never a ligand unless named)."""

from __future__ import annotations

from functools import lru_cache

WATER = frozenset({"HOH", "WAT", "DOD", "H2O", "TIP", "TIP3", "SOL", "DIS"})

# Monatomic and small inorganic ions that crystallographers add or that co-crystallise.
IONS = frozenset(
    {
        "LI", "NA", "K", "RB", "CS", "MG", "CA", "SR", "BA", "MN", "MN3", "FE", "FE2", "CO", "3CO",
        "NI", "3NI", "CU", "CU1", "CU3", "ZN", "CD", "HG", "PB", "AG", "AU", "PT", "AL", "GA", "TL",
        "YB", "SM", "EU", "GD", "TB", "LA", "CR", "V", "F", "CL", "BR", "IOD", "I", "OH", "NH4",
        "SO4", "PO4", "NO3", "SCN", "CN", "AZI", "CO3", "BCT", "SE4", "WO4", "MOO", "VO4", "ARS",
    }
)

# Crystallisation additives, cryoprotectants, buffers and detergents.
ADDITIVES = frozenset(
    {
        "GOL", "EDO", "PEG", "PGE", "PG4", "1PE", "P6G", "2PE", "P33", "PE4", "PE8", "12P", "15P",
        "MPD", "MRD", "DMS", "DMSO", "ACT", "ACY", "FMT", "CIT", "FLC", "TRS", "MES", "EPE", "HEPES",
        "IMD", "BME", "DTT", "TAR", "MLI", "MLA", "SIN", "BU3", "IPA", "EOH", "MOH", "ETF", "BOG",
        "LDA", "C8E", "SGM", "PCA", "NAG", "NDG", "MAN", "BMA", "FUC", "GAL", "GLC", "SCN", "URE",
        "DIO", "PO3", "2HP", "PI", "POP", "AZI", "CAC", "BCN", "TLA", "EEE", "ACN", "NHE", "CPS",
    }
)

# Terminal caps that belong to the polymer, never ligands.
CAPS = frozenset({"ACE", "NH2", "NME", "FOR", "CH3"})

NOT_LIGAND = WATER | IONS | ADDITIVES | CAPS

STANDARD_AA = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
    "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
    "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V", "SEC": "U", "PYL": "O",
}
AA_LETTERS = frozenset("ACDEFGHIKLMNPQRSTVWYUOX")


@lru_cache(maxsize=4096)
def residue_info(name: str):
    import gemmi

    return gemmi.find_tabulated_residue(name)


def is_polymer_residue(name: str) -> bool:
    """Amino acid or nucleotide (standard or a tabulated modified one such as MSE)."""
    name = name.strip().upper()
    if name in STANDARD_AA:
        return True
    info = residue_info(name)
    return info is not None and (info.is_amino_acid() or info.is_nucleic_acid())


def is_amino_acid(name: str) -> bool:
    name = name.strip().upper()
    if name in STANDARD_AA:
        return True
    info = residue_info(name)
    return info is not None and info.is_amino_acid()


def one_letter(name: str) -> str:
    """One-letter code of an amino-acid residue name; modified residues map to their parent; else X."""
    name = name.strip().upper()
    if name in STANDARD_AA:
        return STANDARD_AA[name]
    info = residue_info(name)
    if info is not None and info.is_amino_acid():
        code = info.one_letter_code.upper()
        if code.strip() and code in AA_LETTERS:
            return code
    return "X"


def is_water(name: str) -> bool:
    return name.strip().upper() in WATER


def never_ligand(name: str) -> bool:
    """Water, common ion, crystallisation additive or polymer cap."""
    return name.strip().upper() in NOT_LIGAND
