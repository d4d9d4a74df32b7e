"""Reference runtime: plain-PyTorch semantics of every eqdsl op.

Generated modules call these, and every fused kernel is tested against them.
Features use e3nn's layout ([..., irreps.dim], each MulIr block [mul, 2l+1]
flattened), and the numbers match e3nn for the same weights (see the tests).
"""
from .autograd import forces, grad
from .activations import ACTIVATIONS, get_activation, normalize2mom, second_moment_scale
from . import frames, gaunt, low_rank, orientations, soft_layers, sphere
from .gate import Gate, NormActivation
from .graph_ops import gather, pool, scatter
from .inputs import check_inputs
from .invariants import dot, norm
from .linear import Linear, SelectedLinear
from .symmetric_contraction import SymmetricContraction
from .mlp import MLP
from .rotations import orthonormalize
from .radial import bessel_basis, gaussian_basis, polynomial_cutoff, radial_embedding, spline_basis
from .sh import SphericalHarmonics, spherical_harmonics
from .tensor_product import TensorProduct

__all__ = [
    "ACTIVATIONS", "get_activation", "normalize2mom", "second_moment_scale",
    "frames", "gaunt", "low_rank", "orientations", "soft_layers", "sphere", "Gate", "NormActivation", "check_inputs", "orthonormalize", "gather", "pool", "scatter", "dot", "forces", "grad", "norm",
    "Linear", "SelectedLinear", "SymmetricContraction", "MLP", "bessel_basis", "gaussian_basis", "polynomial_cutoff", "radial_embedding", "spline_basis",
    "SphericalHarmonics", "spherical_harmonics", "TensorProduct",
]
