# EMLP-style regression over O(5) (Finzi et al. 2021, "synthetic O(5) invariant regression"):
# predict f(x1, x2) = sin|x1| - |x2|^3 / 2 + x1.x2 / (|x1| |x2|) from two vectors in R^5.
#
# Every layer is an equivariant linear map plus an equivariant bilinear map (both solved by the
# compiler from O(5)'s generators) followed by a gated nonlinearity, EMLP's block structure.
group O5 = O(5)

rep Hidden = 16 + 8 * V + 2 * V**2                      # scalars, vectors, rank-2 tensors
rep GateIn = 16 + 10 + 8 * V + 2 * V**2                 # ... plus one gate per non-scalar block

block emlp_layer(h) {
    z = linear(h, bias = true) -> GateIn
    z = z + 0.1 * bilinear(z, z) -> GateIn                # small: products of products grow fast
    return gate(z) -> Hidden
}

model EmlpO5(layers = 2) {
    input x : 2 * V @graph                               # x1 and x2, as [batch, 10]

    h = concat(x, bilinear(x, x) -> (16 + 2 * V**2))     # V (x) V gives the scalars and tensors
    repeat layers {
        h = emlp_layer(h)
    }
    output y : 1 @graph = linear(h) -> 1
}
