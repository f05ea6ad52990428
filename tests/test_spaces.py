"""Search-space basics: ids <-> strings, Vec encodings, the GCN graph form."""

from __future__ import annotations

import numpy as np
import pytest

from multipredict import spaces
from multipredict.errors import MultipredictError, UnknownNameError
from multipredict.spaces import fbnet, nb201


def test_nb201_vec_encoding_reflects_ops_and_edges():
    ids = np.arange(200)
    vec = nb201.vec_encoding(ids)
    assert vec.shape == (200, 36)
    one_hot = vec[:, 6:].reshape(200, 6, 5)
    assert (one_hot.sum(axis=2) == 1).all()
    for row, arch in zip(vec[:20], ids[:20]):
        ops = nb201.parse(nb201.arch_string(int(arch)))
        assert row[:6].tolist() == [float(op != "none") for op in ops]
        assert [nb201.OPS[i] for i in row[6:].reshape(6, 5).argmax(axis=1)] == list(ops)
    assert len({tuple(r) for r in nb201.vec_encoding(np.arange(nb201.N_ARCHS))}) == nb201.N_ARCHS


def test_nb201_graph_form():
    adj = nb201.graph_adjacency()
    assert adj.shape == (8, 8) and np.allclose(np.triu(adj, 1), adj)  # a DAG in topological order
    assert adj[0, 1:].sum() == 3  # input feeds the three edges leaving node 0
    assert adj[:, 7].sum() == 3  # three edges enter the output node
    feats = nb201.graph_features([0, 1])
    assert feats.shape == (2, 8, len(nb201.GRAPH_OPS)) and (feats.sum(axis=2) == 1).all()


def test_nb201_parse_errors_name_the_value():
    with pytest.raises(MultipredictError, match="'|conv~0|'"):
        nb201.parse("|conv~0|")
    with pytest.raises(MultipredictError, match="out of range"):
        nb201.arch_id(15625)


def test_fbnet_ids_and_one_hot():
    vec = fbnet.vec_encoding([0, 1, 2])
    assert vec.shape == (3, 198) and (vec.reshape(3, 22, 9).sum(axis=2) == 1).all()
    ops = fbnet.archs()[42].tolist()
    assert fbnet.arch_id(ops) == 42
    assert fbnet.arch_id("_".join(map(str, ops))) == 42
    with pytest.raises(MultipredictError, match="22 op indices"):
        fbnet.parse([1, 2, 3])


def test_space_registry():
    assert spaces.get("fbnet") is fbnet
    with pytest.raises(UnknownNameError, match="valid spaces: nb201, fbnet"):
        spaces.get("nb101")
