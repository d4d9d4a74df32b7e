# A model over a non-compact group: SL(2) acting on vectors u in R^2 and on matrices A
# (A -> g A g^-1, the representation V * V.dual). Averaging over the group is impossible here,
# but the equivariance constraint is still linear: eqc solves it from SL(2)'s Lie algebra.
# The solved invariants are det[u1 u2] (the area form), tr(A) and det[u A u] forms.
group SL2 = SL(2)

rep Mat = V * V.dual

model SL2Tensors {
    input u : 2 * V @graph                               # two vectors
    input A : Mat @graph                                 # a 2x2 matrix, row-major

    area = bilinear(u, u) -> 1                           # det[u1 u2], up to a learned scale
    trace = linear(A) -> 1
    Au = bilinear(A, u) -> (2 * V)                     # A u1, A u2 (and their combinations)
    twisted = bilinear(u, Au) -> 4                       # det[u_i, A u_j]
    s = concat(area, trace, twisted)

    output invariant : 1 @graph = mlp(s, 32, act = silu) -> 1
    output vector : 2 * V @graph = gate(concat(mlp(s, 32, act = silu) -> 2, Au)) -> (2 * V)
}
