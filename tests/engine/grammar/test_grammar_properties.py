"""Property tests of the codec (hypothesis) and a small fuzz test: decode never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.grammar import codec as C
from engine.grammar import tags as T
from engine.grammar import validate as V

AA = "ACDEFGHIKLMNPQRSTVWY"

# real drug-like molecules (RDKit's NCI sample and the MOSES canon), written in odd but valid ways
MOLECULES = ["CC1=CC(=O)C=CC1=O", "OC(=O)C1=CC=CC=C1", "C[C@@H](N)C(=O)O", "c1ccc2c(c1)[nH]c1ccccc12",
             "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "F/C=C/Cl", "O=C(O)c1ccc(C(=O)O)cc1", "OCC(O)CO",
             "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O", "N#Cc1ccccc1", "[NH4+].[Cl-]", "C1CC[C@H]2CCCC[C@@H]2C1"]

sequences = st.text(alphabet=AA, min_size=1, max_size=120)


@st.composite
def protein_with_pockets(draw):
    seq = draw(sequences)
    pockets = draw(st.sets(st.integers(0, len(seq) - 1), max_size=min(12, len(seq))))
    return seq, tuple(sorted(pockets))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protein_with_pockets(), st.sampled_from(["letter", "smiles"]))
def test_protein_round_trip(pp, style):
    seq, pockets = pp
    text = C.encode_protein(seq, pockets, style)
    d = C.decode(text)
    assert d.valid, d.reasons
    assert d.records[0].sequence == seq
    assert d.records[0].pockets == pockets
    assert C.encode(d.records[0]) == text


@settings(max_examples=60, deadline=None)
@given(st.lists(protein_with_pockets(), min_size=1, max_size=3), st.sampled_from(MOLECULES),
       st.sampled_from(["plain", "pocket", "smiles"]))
def test_complex_round_trip(prots, lig, gran):
    prots = [(s, p if p else (0,)) for s, p in prots]
    text = C.encode_complex(prots, lig, gran)
    d = C.decode(text)
    assert d.valid, d.reasons
    rec = d.records[0]
    assert [p.sequence for p in rec.proteins] == [s for s, _ in prots]
    if gran != "plain":
        assert [p.pockets for p in rec.proteins] == [p for _, p in prots]
    assert C.encode(rec) == text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(MOLECULES), min_size=1, max_size=3),
       st.lists(st.sampled_from(MOLECULES), min_size=1, max_size=2), st.booleans())
def test_reaction_round_trip_is_canonical(left, right, retro):
    text = C.encode_retrosynthesis(right[0], left) if retro else C.encode_reaction(left, right)
    d = C.decode(text)
    assert d.kind == ("retrosynthesis" if retro else "reaction")
    assert C.encode(d.records[0]) == text  # encoding is canonical: a second pass changes nothing


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["Cu2(CO2)4", "Zn4O(CO2)6", "Zr6O8(CO2)8", "rod[Mg2O2(CO2)4]", "layer[Co(N)4]"]),
       st.lists(st.sampled_from(MOLECULES[:10]), min_size=1, max_size=3, unique=True))
def test_material_round_trip(node, linkers):
    text = C.encode_material(node, linkers)
    d = C.decode(text)
    assert d.valid, d.reasons
    assert d.records[0].metal == node
    assert sorted(d.records[0].linkers) == sorted(V.check_molecule(s)[0] for s in linkers)
    assert C.encode(d.records[0]) == text


PIECES = list(T.ALL_TOKENS) + ["M", "K", "CCO", "c1ccccc1", "Cu2(CO2)4", "<", ">", "J", " ", "\n", "[", "(", "1",
                                "<ProteinS", "PocketE>", "\x00", "é"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25))
def test_decode_never_raises_on_token_soup(pieces):
    d = C.decode("".join(pieces))
    assert isinstance(d.valid, bool)
    assert d.valid or d.reasons  # an invalid verdict always says why


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=300))
def test_decode_never_raises_on_arbitrary_text(text):
    d = C.decode(text)
    assert d.valid or d.reasons


def test_fuzz_mutations_of_real_records():
    """Byte-level mutations of valid records: every outcome is a verdict, never an exception."""
    import random

    rng = random.Random(1234)
    seeds = [
        C.encode_complex([("MKTAYIAKQRQISFVK", (2, 5))], "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O", "smiles"),
        C.encode_material("Zn4O(CO2)6", ["O=C(O)c1ccc(C(=O)O)cc1"]),
        C.encode_retrosynthesis("CCOC(C)=O", ["CCO", "CC(=O)Cl"]),
        C.encode_search("MKTAYIAK", [1, 2]),
    ]
    alphabet = "<>SEProteinPocketMoleculeMetal()[]=#@+-.123CNOcn \n"
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        s = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            k = rng.randrange(len(s)) if s else 0
            if op < 0.4 and s:
                del s[k]
            elif op < 0.8:
                s.insert(k, rng.choice(alphabet))
            elif s:
                j = rng.randrange(len(s))
                s[k], s[j] = s[j], s[k]
        d = C.decode("".join(s))
        verdicts[d.valid] += 1
        assert d.valid or d.reasons
    assert verdicts[False] > 500  # the mutations really break records
