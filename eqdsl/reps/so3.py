"""Real-basis numerics for SO(3) and O(3): Clebsch-Gordan, Wigner D, spherical harmonics.

Everything follows e3nn's real basis so that data and weights move between
eqdsl and e3nn unchanged:

* the l=1 irrep is the vector itself, components ordered (x, y, z), so
  ``D^1(R) = R`` and ``Y^1(r) = sqrt(3) r / |r|``;
* the m=0 component of every l points along the y axis (e3nn's polar axis);
* Euler angles are Y-X-Y: ``R(a, b, c) = R_y(a) R_x(b) R_y(c)``;
* ``wigner_3j`` is e3nn's: real, Frobenius norm 1, same signs;
* spherical harmonics use 'component' normalization (|Y^l|^2 = 2l+1 on the sphere).

Only numpy and math are used (no torch), so the type checker and code
generators can call this without a deep-learning framework.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from ..groups.o3 import SO3Irrep

# -----------------------------------------------------------------------------
# Basis change and SU(2) Clebsch-Gordan coefficients (complex basis)
# -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _q_matrix(l: int) -> np.ndarray:
    """e3nn's Q (read-only): columns are real-basis vectors written in the complex |l m> basis."""
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    s = 1 / math.sqrt(2)
    for m in range(1, l + 1):
        # row l-m holds the complex m=-|m| state, row l+m the m=+|m| state
        q[l - m, l + m] = s
        q[l - m, l - m] = -1j * s
        q[l + m, l + m] = (-1) ** m * s
        q[l + m, l - m] = 1j * (-1) ** m * s
    q[l, l] = 1
    # the global phase (-i)^l is what makes the real-basis 3j symbols real
    q = (-1j) ** l * q
    q.flags.writeable = False
    return q


def change_basis_real_to_complex(l: int) -> np.ndarray:
    """Unitary Q (complex128, [2l+1, 2l+1]) with ``X_real = Q^H X_complex Q`` (e3nn convention).

    Rows index the complex basis m = -l..l, columns the real basis.
    """
    _check_l(l)
    return _q_matrix(l).copy()


def _check_l(l) -> None:
    if not isinstance(l, (int, np.integer)) or l < 0:
        raise ValueError(f"l must be a non-negative integer, got {l!r}")


def _twice(j) -> int:
    """2j as an int, for j integer or half-integer (int, float or Fraction)."""
    tj = Fraction(j) * 2
    if tj.denominator != 1 or tj < 0:
        raise ValueError(f"angular momentum must be a non-negative (half-)integer, got {j!r}")
    return int(tj)


def _triangle_ok(t1: int, t2: int, t3: int) -> bool:
    """Triangle rule on doubled momenta, plus j1+j2+j3 integer."""
    return abs(t1 - t2) <= t3 <= t1 + t2 and (t1 + t2 + t3) % 2 == 0


def _cg_coeff(t1: int, t2: int, t3: int, tm1: int, tm2: int) -> float:
    """<j1 m1 j2 m2 | j3 m1+m2> by Racah's formula, on doubled arguments, computed exactly.

    The square of the prefactor and the alternating sum are exact rationals,
    so the only roundings are at the final float conversion and sqrt: ~1 ulp even at l ~ 16.
    """
    tm3 = tm1 + tm2
    f = math.factorial
    h = lambda *ts: sum(ts) // 2  # noqa: E731  (all combinations used here are even)
    pre = Fraction(
        (t3 + 1) * f(h(t3, t1, -t2)) * f(h(t3, -t1, t2)) * f(h(t1, t2, -t3))
        * f(h(t3, tm3)) * f(h(t3, -tm3)) * f(h(t1, -tm1)) * f(h(t1, tm1)) * f(h(t2, -tm2)) * f(h(t2, tm2)),
        f(h(t1, t2, t3) + 1),
    )
    a = [h(t1, t2, -t3), h(t1, -tm1), h(t2, tm2)]  # (a_i - k)! in the sum: bounds k above
    b = [h(t3, -t2, tm1), h(t3, -t1, -tm2)]  # (b_i + k)! in the sum: bounds k below
    kmin, kmax = max(0, -b[0], -b[1]), min(a)
    s = Fraction(0)
    for k in range(kmin, kmax + 1):
        den = f(k) * f(a[0] - k) * f(a[1] - k) * f(a[2] - k) * f(b[0] + k) * f(b[1] + k)
        s += Fraction((-1) ** k, den)
    if s == 0:
        return 0.0
    return math.copysign(math.sqrt(pre * s * s), s)


@functools.lru_cache(maxsize=None)
def _su2_cg(t1: int, t2: int, t3: int) -> np.ndarray:
    out = np.zeros((t1 + 1, t2 + 1, t3 + 1))
    for i1 in range(t1 + 1):
        for i2 in range(t2 + 1):
            tm1, tm2 = 2 * i1 - t1, 2 * i2 - t2
            if abs(tm1 + tm2) <= t3:
                out[i1, i2, (tm1 + tm2 + t3) // 2] = _cg_coeff(t1, t2, t3, tm1, tm2)
    out.flags.writeable = False
    return out


def su2_clebsch_gordan(j1, j2, j3) -> np.ndarray:
    """Complex-basis CG tensor C[m1, m2, m3] = <j1 m1 j2 m2 | j3 m3> (Condon-Shortley), float64, read-only.

    Indices run m = -j..j.  j may be half-integer.  Raises ValueError if the
    triangle rule fails.
    """
    t1, t2, t3 = _twice(j1), _twice(j2), _twice(j3)
    if not _triangle_ok(t1, t2, t3):
        raise ValueError(f"({j1}, {j2}, {j3}) violates the triangle rule")
    return _su2_cg(t1, t2, t3)


# -----------------------------------------------------------------------------
# Real-basis 3j symbols and generators
# -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    cg = _su2_cg(2 * l1, 2 * l2, 2 * l3).astype(np.complex128)
    q1, q2, q3 = _q_matrix(l1), _q_matrix(l2), _q_matrix(l3)
    # move each leg to the real basis; the third (output) leg uses Q^* because it is a ket
    c = np.einsum("ij,kl,nm,ikn->jlm", q1, q2, q3.conj(), cg)
    if np.abs(c.imag).max() > 1e-10 * max(1.0, np.abs(c.real).max()):
        raise RuntimeError(f"3j({l1},{l2},{l3}) did not come out real; basis convention broken")
    c = np.ascontiguousarray(c.real)
    c /= np.linalg.norm(c)
    c.flags.writeable = False
    return c


def wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real-basis coupling tensor C[2l1+1, 2l2+1, 2l3+1], equal to ``e3nn.o3.wigner_3j``.

    Invariant: ``C_ijk D1_ia D2_jb D3_kc = C_abc`` for every rotation; ``sum C**2 == 1``.
    Cached and read-only.  Raises ValueError if (l1, l2, l3) fails the triangle rule.
    """
    for l in (l1, l2, l3):
        _check_l(l)
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise ValueError(f"({l1}, {l2}, {l3}) violates the triangle rule |l1-l2| <= l3 <= l1+l2")
    return _wigner_3j(int(l1), int(l2), int(l3))


def _su2_generators(l: int) -> np.ndarray:
    """e3nn's complex-basis generators: (-i J_y, i J_z, i J_x), which become L_x, L_y, L_z after Q."""
    m = np.arange(-l, l + 1, dtype=np.float64)
    # <m+1| J_+ |m>, stored at [index of m+1, index of m]
    jp = np.diag(np.sqrt(l * (l + 1) - m[:-1] * (m[:-1] + 1)), k=-1)
    jm = jp.T
    jx, jy, jz = (jp + jm) / 2, (jp - jm) / 2j, np.diag(m)
    return np.stack([-1j * jy, 1j * jz, 1j * jx])


@functools.lru_cache(maxsize=None)
def _so3_generators(l: int) -> np.ndarray:
    q = _q_matrix(l)
    x = q.conj().T @ _su2_generators(l) @ q
    assert np.abs(x.imag).max() < 1e-10, "real-basis generators must be real"
    out = np.ascontiguousarray(x.real)
    out.flags.writeable = False
    return out


def so3_generators(l: int) -> np.ndarray:
    """Real antisymmetric generators [3, 2l+1, 2l+1] of rotations about x, y, z (for l=1: the usual L_x, L_y, L_z)."""
    _check_l(l)
    return _so3_generators(int(l)).copy()


# -----------------------------------------------------------------------------
# Rotations, Euler angles (Y-X-Y), Wigner D
# -----------------------------------------------------------------------------


def _rot(axis: int, angle) -> np.ndarray:
    """Rotation matrices [..., 3, 3] about coordinate axis 0 (x), 1 (y) or 2 (z)."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(angle.shape + (3, 3))
    i, j = [k for k in range(3) if k != axis]
    sign = -1.0 if axis == 1 else 1.0  # about y, the cyclic order is (z, x)
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -sign * s
    out[..., j, i] = sign * s
    return out


def angles_to_matrix(alpha, beta, gamma) -> np.ndarray:
    """R = R_y(alpha) R_x(beta) R_y(gamma), shape [..., 3, 3] (e3nn's convention)."""
    alpha, beta, gamma = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (alpha, beta, gamma)))
    return _rot(1, alpha) @ _rot(0, beta) @ _rot(1, gamma)


def matrix_to_angles(R):
    """Inverse of ``angles_to_matrix`` for rotations (det +1); returns (alpha, beta, gamma)."""
    R = np.asarray(R, dtype=np.float64)
    if not np.allclose(np.linalg.det(R), 1.0, atol=1e-6):
        raise ValueError("matrix_to_angles needs proper rotations (det R = +1)")
    y = R[..., :, 1]  # image of the polar axis e_y fixes alpha and beta
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    beta = np.arccos(np.clip(y[..., 1], -1.0, 1.0))
    alpha = np.arctan2(y[..., 0], y[..., 2])
    rest = np.swapaxes(angles_to_matrix(alpha, beta, np.zeros_like(alpha)), -1, -2) @ R
    gamma = np.arctan2(rest[..., 0, 2], rest[..., 0, 0])
    return alpha, beta, gamma


@functools.lru_cache(maxsize=None)
def _generator_eig(l: int, axis: int):
    """Eigen-decomposition of the Hermitian i*X so that exp(t X) = V diag(exp(-i w t)) V^H."""
    w, v = np.linalg.eigh(1j * _so3_generators(l)[axis])
    return w, v


def _expm_generator(l: int, axis: int, t: np.ndarray) -> np.ndarray:
    w, v = _generator_eig(l, axis)
    phase = np.exp(-1j * t[..., None] * w)  # [..., d]
    return ((v * phase[..., None, :]) @ v.conj().T).real


def wigner_D(l: int, alpha, beta, gamma) -> np.ndarray:
    """Real Wigner D^l(alpha, beta, gamma) = exp(a X_y) exp(b X_x) exp(c X_y), shape [..., 2l+1, 2l+1].

    Same as ``e3nn.o3.wigner_D``; ``wigner_D(1, *angles) == angles_to_matrix(*angles)``.
    """
    _check_l(l)
    a, b, c = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (alpha, beta, gamma)))
    return _expm_generator(l, 1, a) @ _expm_generator(l, 0, b) @ _expm_generator(l, 1, c)


def _check_orthogonal(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"expected [..., 3, 3] matrices, got shape {R.shape}")
    err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max(initial=0.0)
    if err > 1e-6:
        raise ValueError(f"matrix is not orthogonal (|R^T R - I| = {err:.2e})")
    return R


def _D_chain(lmax: int, R: np.ndarray) -> list[np.ndarray]:
    """D^0..D^lmax of rotations R [..., 3, 3] by coupling: D^{l+1} = (2l+3) C (R (x) D^l) C^T.

    C = wigner_3j(l+1, 1, l) is an isometry up to the factor 1/(2l+3); no Euler
    angles, so there is no gimbal-lock loss of accuracy.
    """
    batch = R.shape[:-2]
    ds = [np.ones(batch + (1, 1))]
    if lmax >= 1:
        ds.append(R.copy())
    for l in range(1, lmax):
        c = _wigner_3j(l + 1, 1, l)
        t = np.einsum("aij,...ik->...ajk", c, R)  # [..., a, j(l), k(1)]
        t = np.einsum("...ajk,...jm->...akm", t, ds[l])  # [..., a, k(1), m(l)]
        ds.append((2 * l + 3) * np.einsum("...akm,bkm->...ab", t, c))
    return ds


def _parity_sign(ir, det_sign: np.ndarray) -> np.ndarray:
    """The factor multiplying D for improper R: p for an O(3) irrep (e3nn's p**k with k=1), error for SO(3)."""
    if isinstance(ir, SO3Irrep):
        if np.any(det_sign < 0):
            raise ValueError(f"SO(3) irrep {ir} has no representation of reflections (det R = -1)")
        return np.ones_like(det_sign)
    return np.where(det_sign < 0, float(ir.p), 1.0)


def _split_det(R: np.ndarray):
    """R = d * R_proper with d = sign(det R) = +-1 (in 3D, -R flips the determinant)."""
    d = np.sign(np.linalg.det(R))
    return d, d[..., None, None] * R


def D_from_matrix(ir, R) -> np.ndarray:
    """Matrix of the irrep ``ir`` (O3Irrep or SO3Irrep) at the orthogonal matrix R [..., 3, 3].

    For O(3), R = -1 * R' with det R' = +1 gives ``p * D^l(R')`` (e3nn's ``Irrep.D_from_matrix``).
    For SO(3) irreps, improper R raises ValueError.
    """
    R = _check_orthogonal(R)
    d, proper = _split_det(R)
    sign = _parity_sign(ir, d)
    return _D_chain(ir.l, proper)[ir.l] * sign[..., None, None]


def irreps_D(irreps, R) -> np.ndarray:
    """Block-diagonal [..., dim, dim] matrix of ``irreps`` at R, in e3nn's mul_ir layout.

    Each MulIr block is ``mul`` consecutive copies of the irrep's D.
    """
    R = _check_orthogonal(R)
    d, proper = _split_det(R)
    lmax = max((x.ir.l for x in irreps), default=0)
    ds = _D_chain(lmax, proper)
    out = np.zeros(R.shape[:-2] + (irreps.dim, irreps.dim))
    start = 0
    for mul, ir in irreps:
        block = ds[ir.l] * _parity_sign(ir, d)[..., None, None]
        for _ in range(mul):
            out[..., start:start + ir.dim, start:start + ir.dim] = block
            start += ir.dim
    return out


def random_rotation(rng: np.random.Generator, shape=()) -> np.ndarray:
    """Haar-random rotation(s) [*shape, 3, 3], det +1."""
    q = random_orthogonal(rng, shape)
    # det(-Q) = -det(Q) in 3D, and Q -> det(Q) Q carries Haar on O(3) to Haar on SO(3)
    return np.sign(np.linalg.det(q))[..., None, None] * q


def random_orthogonal(rng: np.random.Generator, shape=()) -> np.ndarray:
    """Haar-random orthogonal matrix(ces) [*shape, 3, 3], det +1 or -1 with equal probability."""
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    g = rng.standard_normal(shape + (3, 3))
    q, r = np.linalg.qr(g)
    # fixing the signs of diag(r) makes the QR factor Haar-distributed (Mezzadri 2007)
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


# -----------------------------------------------------------------------------
# Spherical harmonics
# -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _sh_scale(l: int) -> float:
    """Positive factor turning C(l+1,1,l)(r (x) Y^l) into component-normalized Y^{l+1}.

    The coupled polynomial is equivariant, so its norm on the unit sphere is a
    constant; measure it at e_y.  Positive, hence the same signs as e3nn's
    generated polynomials (built by the same recursion).
    """
    e_y = np.array([0.0, 1.0, 0.0])
    y_l = spherical_harmonics(l, e_y, normalize=False)[l * l:]
    p = np.einsum("aij,i,j->a", _wigner_3j(l + 1, 1, l), e_y, y_l)
    return math.sqrt(2 * l + 3) / float(np.linalg.norm(p))


def spherical_harmonics(lmax: int, xyz, normalize: bool = True) -> np.ndarray:
    """Real spherical harmonics Y^0..Y^lmax [..., (lmax+1)**2] of xyz [..., 3], e3nn basis, 'component' norm.

    Equal to ``e3nn.o3.spherical_harmonics(range(lmax+1), xyz, normalize, 'component')``.
    Y^l is a homogeneous polynomial of degree l; with ``normalize`` it is
    evaluated at xyz/|xyz| (and at r = 0 gives 1 for l=0, 0 for l>0).
    """
    _check_l(lmax)
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape[-1:] != (3,):
        raise ValueError(f"xyz must have shape [..., 3], got {xyz.shape}")
    if normalize:
        r = np.linalg.norm(xyz, axis=-1, keepdims=True)
        xyz = np.divide(xyz, r, out=np.zeros_like(xyz), where=r > 0)
    blocks = [np.ones(xyz.shape[:-1] + (1,))]
    if lmax >= 1:
        blocks.append(math.sqrt(3) * xyz)
    for l in range(1, lmax):
        c = _wigner_3j(l + 1, 1, l)
        blocks.append(_sh_scale(l) * np.einsum("aij,...i,...j->...a", c, xyz, blocks[l]))
    return np.concatenate(blocks, axis=-1)
