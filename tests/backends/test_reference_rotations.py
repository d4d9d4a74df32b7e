"""Rotation outputs by Gram-Schmidt: rotations for every input (orthonormal, det 1), equivariant with the
columns' parities (O(3): R(g x) = g R(x) diag(1, 1, det g)), correct gradients, parallel vectors refused."""
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl import testing
from eqdsl.backends.reference import orthonormalize
from eqdsl.reps import so3

ROOT = Path(__file__).resolve().parents[2]


def test_gram_schmidt_gives_rotations():
    a, b = torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 3, dtype=torch.float64)
    R = orthonormalize([a, b])
    assert torch.allclose(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-13)
    assert torch.allclose(torch.linalg.det(R), torch.ones(50, dtype=torch.float64), atol=1e-13)
    assert torch.allclose(R[..., 0], a / a.norm(dim=-1, keepdim=True))
    R2 = orthonormalize([a[:, :2]])
    assert torch.allclose(torch.linalg.det(R2), torch.ones(50, dtype=torch.float64))


def test_under_a_reflection_the_third_column_is_a_pseudovector():
    rng = np.random.default_rng(0)
    g = torch.as_tensor(so3.random_orthogonal(rng))
    if torch.linalg.det(g) > 0:
        g = -g
    a, b = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    moved = orthonormalize([a @ g.T, b @ g.T])
    assert torch.allclose(moved, g @ orthonormalize([a, b]) @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)),
                          atol=1e-12)
    assert torch.allclose(torch.linalg.det(moved), torch.ones(8, dtype=torch.float64))


def test_gradients():
    a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: orthonormalize([a, b]), (a, b))
    assert torch.autograd.gradcheck(lambda v: orthonormalize([v]), (a[:, :2].detach().clone().requires_grad_(True),))


def test_parallel_or_vanishing_vectors_are_refused():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"vector 2 is parallel .* for some rows.*rows \[0\]"):
        orthonormalize([a, torch.tensor([[2.0, 4.0, 6.0], [1.0, 0.0, 0.0]], dtype=torch.float64)])
    with pytest.raises(ValueError, match="first vector vanishes"):
        orthonormalize([torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64), a])


@pytest.mark.parametrize("group,vec,scalar", [("O3", "1x1o", "1x0e"), ("SO3", "1x1", "1x0")])
def test_the_shipped_pose_spec_and_its_so3_twin_are_equivariant_rotations(tmp_path, group, vec, scalar):
    text = (ROOT / "specs" / "pose_6d.eq").read_text()
    if group == "SO3":
        text = text.replace("group O3", "group SO3").replace("4x0e", "4x0").replace("16x0e", "16x0").replace("1x0e", "1x0")
    path = tmp_path / "pose.eq"
    path.write_text(text)
    torch.manual_seed(0)
    model = eqdsl.compile_file(path).model_class()().double()
    errors = testing.assert_equivariant(model, trials=4, tol=1e-10)
    assert set(errors) == {"orientation"}
    sample = testing.random_sample(type(model), np.random.default_rng(2))
    R = model(**sample.inputs, **sample.kwargs)["orientation"]
    assert R.shape == (2, 3, 3)
    assert torch.allclose(torch.linalg.det(R), torch.ones(2, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("n", [4, 5])
def test_so_n_rotations_from_n_minus_1_vectors(n):
    """The SO(n) form: orthonormal, det 1, and R(g x) = g R(x) diag(1, ..., 1, det g) for g in O(n)."""
    vectors = [torch.randn(6, n, dtype=torch.float64) for _ in range(n - 1)]
    R = orthonormalize(vectors)
    assert torch.allclose(R.transpose(-1, -2) @ R, torch.eye(n, dtype=torch.float64).expand(6, n, n), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(6, dtype=torch.float64), atol=1e-12)
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    if torch.linalg.det(q) > 0:
        q[:, 0] = -q[:, 0]  # a reflection
    twist = torch.ones(n, dtype=torch.float64)
    twist[-1] = -1.0
    assert torch.allclose(orthonormalize([v @ q.T for v in vectors]), q @ R @ torch.diag(twist), atol=1e-12)
    assert torch.autograd.gradcheck(lambda *vs: orthonormalize(list(vs)),
                                    tuple(v[:2].clone().requires_grad_(True) for v in vectors))


PLANE = """group O2 = O(2)
model Heading {
    input pos : position @node
    input q : 1 @node
    input edges : graph
    r = pos[dst] - pos[src]
    w = mlp(concat(norm(r), q[src]), 16) -> 1
    output R : rotation @graph = orthonormalize(linear(sum_nodes(scatter_sum(r * w, dst))) -> V)
}
"""
FOUR_DIMENSIONS = """group G = O(4)
model Frame4 {
    input pos : position @node
    input q : 3 @node
    input edges : graph
    r = pos[dst] - pos[src]
    w = mlp(concat(norm(r), q[src]), 16) -> 3
    m = scatter_sum(concat(r * (linear(w) -> 1), r * (linear(w) -> 1), r * (linear(w) -> 1)), dst)
    s = sum_nodes(m)
    output R : rotation @graph = orthonormalize(linear(s) -> V, linear(s) -> V, linear(s) -> V)
}
"""


@pytest.mark.parametrize("text,columns", [(PLANE, "V + det * V"), (FOUR_DIMENSIONS, "3*V + det * V")],
                         ids=["plane-one-vector", "O4-three-vectors"])
def test_rotations_of_matrix_groups_from_n_minus_1_vectors(tmp_path, text, columns):
    """The last column turns back under reflections (det * V); eqc check acts on it so."""
    path = tmp_path / "spec.eq"
    path.write_text(text)
    torch.manual_seed(0)
    model = eqdsl.compile_file(path).model_class()().double()
    assert type(model).OUTPUTS[0] == ("R", "rotation", columns, "graph")
    testing.assert_equivariant(model, trials=3, tol=1e-10)
