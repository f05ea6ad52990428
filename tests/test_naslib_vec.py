"""Vec encodings of the NASLib spaces (multipredict.spaces.naslib_vec) on the real keys of the mirror."""

import ast
import os
from functools import cache
from pathlib import Path

os.environ.setdefault("MULTIPREDICT_MIRROR", str(Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from multipredict.data import naslib  # noqa: E402
from multipredict.errors import MultipredictError, UnknownNameError  # noqa: E402
from multipredict.spaces import naslib_vec, nb201  # noqa: E402
from multipredict.spaces.naslib_vec import VEC_SPACES, vec_encoding, vec_width  # noqa: E402

WIDTHS = {"nb101": 36, "nb201": 30, "nb301": 168, "tnb101_micro": 24, "tnb101_macro": 30}
# ones per row: one per one-hot block (nb101: its edges plus one per interior op, checked apart)
ONES = {"nb201": 6, "nb301": 32, "tnb101_micro": 6, "tnb101_macro": 6}


@cache
def table_keys(space: str) -> tuple:
    """Every arch id in every task table of ``space``: NAS-Bench-Suite-Zero (with the whole-space
    columns joined) and, for its three spaces, the 9x tables."""
    keys = set()
    for task in naslib.tasks(space):
        keys |= set(naslib.space_proxies(space, task, with_whole_space=True).index)
    if space in naslib.NINE_X_SPACES:
        for task in naslib.NINE_X_TASKS:
            keys |= set(naslib.nine_x(space, task).index)
    return tuple(sorted(keys))


def ones(row: np.ndarray) -> list[int]:
    return np.flatnonzero(row).tolist()


def test_spaces_are_naslibs():
    assert VEC_SPACES == naslib.SPACES


@pytest.mark.parametrize("space", VEC_SPACES)
def test_width_and_dtype(space):
    assert vec_width(space) == WIDTHS[space]
    keys = table_keys(space)[:50]
    encoded = vec_encoding(space, keys)
    assert encoded.dtype == np.float32
    assert encoded.shape == (len(keys), WIDTHS[space])
    assert set(np.unique(encoded)) <= {0.0, 1.0}
    assert vec_encoding(space, []).shape == (0, WIDTHS[space])


@pytest.mark.parametrize("space", VEC_SPACES)
def test_every_table_key_encodes_and_distinct_archs_stay_distinct(space):
    keys = table_keys(space)
    assert len(keys) >= 500
    encoded = vec_encoding(space, keys)
    assert encoded.shape == (len(keys), WIDTHS[space])
    assert len(np.unique(encoded, axis=0)) == len(set(keys))
    if space in ONES:
        assert (encoded.sum(axis=1) == ONES[space]).all()
    else:  # nb101: every table cell has 7 nodes, so each of the 5 interior op blocks holds one 1
        assert (encoded[:, 21:].reshape(len(keys), 5, 3).sum(axis=2) == 1).all()
    # fixed layout: a row does not depend on which other archs are encoded with it
    some = list(keys[::37])
    assert np.array_equal(vec_encoding(space, some), encoded[::37])
    assert np.array_equal(vec_encoding(space, some[:1]), encoded[:1])


def test_nb201_example_by_hand():
    # NASLib tuple (a0..a5) = (4, 0, 3, 1, 4, 3), codes 0 skip, 1 none, 2 conv3x3, 3 conv1x1, 4 avgpool;
    # in the arch string's edge order (a0, a1, a3, a2, a4, a5): avg, skip, none, 1x1, avg, 1x1, i.e.
    # indices into nb201.OPS (none, skip, 1x1, 3x3, avg) 4, 1, 0, 2, 4, 2 in blocks of 5
    arch = naslib.arch_id("nb201", "(4, 0, 3, 1, 4, 3)")
    assert ones(vec_encoding("nb201", [arch])[0]) == [0 + 4, 5 + 1, 10 + 0, 15 + 2, 20 + 4, 25 + 2]
    assert ones(vec_encoding("nb201", np.array([0]))[0]) == ones(vec_encoding("nb201", 0)[0])


def test_nb201_matches_the_op_one_hots_of_nb201_vec_encoding():
    keys = list(table_keys("nb201"))
    assert np.array_equal(vec_encoding("nb201", keys), nb201.vec_encoding(keys)[:, 6:])


def test_nb101_examples_by_hand():
    rows = ["0, 0, 0, 0, 0, 0, 1", "0, 0, 0, 0, 0, 1, 1", "0, 0, 0, 1, 0, 1, 1", "0, 0, 0, 0, 0, 1, 0",
            "0, 0, 0, 0, 0, 1, 1", "0, 0, 0, 0, 0, 0, 0", "0, 0, 0, 0, 0, 0, 0"]
    key = f"({', '.join(rows)}, 0, 3, 2, 4, 4, 2, 1)"  # the 7x7 adjacency row by row, then the 7 op codes
    assert key in table_keys("nb101")
    # edges (0,6) (1,5) (1,6) (2,3) (2,5) (2,6) (3,5) (4,5) (4,6) -> upper-triangle columns
    # 5 9 10 11 13 14 16 18 19; ops 3 2 4 4 2 (conv1x1 maxpool conv3x3 conv3x3 maxpool) -> 21 + 3i + code-2
    assert ones(vec_encoding("nb101", [key])[0]) == [5, 9, 10, 11, 13, 14, 16, 18, 19, 22, 24, 29, 32, 33]
    # a 5-node chain 0 -> 1 -> 2 -> 3 -> 4 (as in nb101_zen.zip): the output moves to node 6, nodes 4
    # and 5 are padding -- edges (0,1) (1,2) (2,3) (3,6) = columns 0 6 11 17; ops 2 3 4 -> 21 25 29
    chain = "(0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 3, 4, 1)"
    assert ones(vec_encoding("nb101", [chain])[0]) == [0, 6, 11, 17, 21, 25, 29]
    assert ones(vec_encoding("nb101", ["(0, 1, 0, 0, 0, 1)"])[0]) == [5]  # input -> output, nothing else


def test_nb301_example_by_hand():
    key = ("(((0, 0), (1, 0), (0, 0), (2, 4), (1, 2), (3, 6), (3, 1), (4, 5)), "
           "((1, 2), (0, 6), (1, 1), (2, 0), (3, 1), (2, 5), (1, 3), (4, 6)))")
    assert key in table_keys("nb301")
    # pair j: one-hot input over j//2 + 2 values, then one-hot op over 7; pair offsets in a cell
    # 0 9 18 28 38 49 60 72 (84 per cell). The reduction cell's (1, 2), (0, 6) and (3, 1), (2, 5) are
    # encoded sorted, as (0, 6), (1, 2) and (2, 5), (3, 1).
    normal = [0, 2, 10, 11, 18, 21, 30, 35, 39, 44, 52, 59, 63, 66, 76, 82]
    reduction = [0, 8, 10, 13, 19, 22, 30, 31, 40, 47, 52, 54, 61, 68, 76, 83]
    assert ones(vec_encoding("nb301", [key])[0]) == normal + [84 + c for c in reduction]


def test_nb301_pair_order_within_a_node_does_not_matter():
    key = table_keys("nb301")[0]
    cells = ast.literal_eval(key)
    swapped = tuple(tuple(p for j in range(0, 8, 2) for p in (cell[j + 1], cell[j])) for cell in cells)
    assert str(swapped) != key
    assert np.array_equal(vec_encoding("nb301", [str(swapped)]), vec_encoding("nb301", [key]))


def test_tnb101_examples_by_hand():
    assert "(0, 0, 0, 2, 0, 2)" in table_keys("tnb101_micro")
    assert ones(vec_encoding("tnb101_micro", ["(0, 0, 0, 2, 0, 2)"])[0]) == [0, 4, 8, 14, 16, 22]
    assert {"(1, 2, 4, 2)", "(1, 1, 1, 1, 1, 4)"} <= set(table_keys("tnb101_macro"))
    # (1, 2, 4, 2) -> blocks of 5 over (absent, 1, 2, 3, 4); positions 4 and 5 absent
    assert ones(vec_encoding("tnb101_macro", ["(1, 2, 4, 2)"])[0]) == [1, 7, 14, 17, 20, 25]
    assert ones(vec_encoding("tnb101_macro", ["(1, 1, 1, 1, 1, 4)"])[0]) == [1, 6, 11, 16, 21, 29]
    # NASLib's zero-padded spelling of a macro arch encodes like the canonical one
    assert np.array_equal(vec_encoding("tnb101_macro", ["(1, 2, 4, 2, 0, 0)"]),
                          vec_encoding("tnb101_macro", ["(1, 2, 4, 2)"]))


@pytest.mark.parametrize(("space", "key", "detail"), [
    ("nb101", "(0, 1, 0, 0, 0, 1, 2)", "7 values"),
    ("nb101", "(0, 1, 0, 0, 0, 5)", "end with 1"),
    ("nb101", "(0, 1, 1, 0, 0, 1)", "below the diagonal"),
    ("nb101", "(0, 2, 0, 0, 0, 1)", "0 or 1"),
    ("nb101", "(0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 5, 4, 1)",
     "2..4"),
    ("nb201", 15625, "out of range"),
    ("nb201", -1, "out of range"),
    ("nb201", "117", "not an integer"),
    ("nb301", "(((2, 0), (1, 0), (0, 0), (2, 4), (1, 2), (3, 6), (3, 1), (4, 5)), "
              "((1, 2), (0, 6), (1, 1), (2, 0), (3, 1), (2, 5), (1, 3), (4, 6)))",
     "normal cell pair 0: input 2 not in 0..1"),
    ("nb301", "(((0, 7), (1, 0), (0, 0), (2, 4), (1, 2), (3, 6), (3, 1), (4, 5)), "
              "((1, 2), (0, 6), (1, 1), (2, 0), (3, 1), (2, 5), (1, 3), (4, 6)))", "op 7"),
    ("nb301", "(((0, 0), (1, 0)), ((1, 2), (0, 6)))", "8 (input, op)"),
    ("tnb101_micro", "(0, 0, 0, 2, 0, 4)", "outside 0..3"),
    ("tnb101_micro", "(0, 0, 0, 2, 0)", "5 op codes"),
    ("tnb101_macro", "(1, 0, 2, 3)", "outside 1..4"),
    ("tnb101_macro", "(1, 2, 3)", "fewer than 4"),
    ("tnb101_macro", "(1, 2, 3, 4, 1, 2, 3)", "more than 6"),
    ("tnb101_micro", "(0, 0, 0, 2, 0", "not a Python tuple literal"),
    ("tnb101_micro", "__import__('os').getcwd()", "not a Python tuple literal"),
    ("tnb101_micro", "(0.0, 0, 0, 2, 0, 2)", "not a tuple of integers"),
    ("tnb101_micro", "(True, 0, 0, 2, 0, 2)", "not a tuple of integers"),
])
def test_malformed_key_names_key_expectation_and_space(space, key, detail):
    with pytest.raises(MultipredictError) as info:
        vec_encoding(space, [table_keys(space)[0], key])
    message = str(info.value)
    assert "\n" not in message
    assert repr(key) in message
    assert f"not a valid {space} arch id" in message
    assert "expected " in message
    assert detail in message


def test_unknown_space():
    for call in (lambda: vec_encoding("nb999", ["(1, 2)"]), lambda: vec_width("nb999")):
        with pytest.raises(UnknownNameError) as info:
            call()
        assert "search space 'nb999'" in str(info.value)
        assert all(space in str(info.value) for space in VEC_SPACES)


def test_keys_are_parsed_once():
    naslib_vec._positions.cache_clear()
    keys = table_keys("tnb101_micro")
    vec_encoding("tnb101_micro", keys)
    vec_encoding("tnb101_micro", keys)
    info = naslib_vec._positions.cache_info()
    assert (info.misses, info.hits) == (len(keys), len(keys))
