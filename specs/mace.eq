# MACE as mace-torch (0.3.16) builds it (mace.modules.ScaleShiftMACE with RealAgnosticInteractionBlock
# first and RealAgnosticResidualInteractionBlock after); written by eqdsl.interop.mace.mace_spec, which
# eqdsl.interop.mace.from_mace compiles to import a trained model's weights.
group O3

const L = 3
rep Elements = 3x0e        # one-hot over the elements, in order: H, C, O
rep Scalars = 16x0e
rep Atomic = 16x0e+16x1o+16x2e+16x3o
rep Hidden = 16x0e+16x1o+16x2e

model MACE(cutoff = 5.0, avg_neighbors = 8.0, layers = 2) {
    input  species : Elements @node
    input  pos     : position @node
    input  edges   : graph                       # src (sender) / dst (receiver) index pairs
    input  shift   : 1x1o     @edge              # periodic image of each dst, S @ cell (zeros for molecules)

    r = pos[dst] - pos[src] + shift
    d = norm(r)
    Y = spherical_harmonics(r, lmax = L)
    radial = bessel(d, n = 8, cutoff = cutoff) * envelope(d, cutoff = cutoff, p = 5)
    h = linear(species) -> Scalars

    # interaction 1 (first kind) and product basis, correlation 3
    x = linear(h) -> Scalars
    m = tensor_product(x[src], Y, weights = mlp(radial, 64, 64, 64, act = silu), mode = uvu, filter = Atomic)
    a = linear(scatter_sum(m, dst)) -> Atomic
    a = a / avg_neighbors
    a = linear(a, by = species) -> Atomic
    h = linear(symmetric_contraction(a, correlation = 3, by = species) -> Hidden) -> Hidden
    t = linear(h) -> 1x0e            # readout

    repeat layers - 2 {
        # interactions 2 to layers - 1 (residual) and product basis, correlation 3
        s = linear(h, by = species) -> Hidden                # element-dependent self-connection
        x = linear(h) -> Hidden
        m = tensor_product(x[src], Y, weights = mlp(radial, 64, 64, 64, act = silu), mode = uvu, filter = Atomic)
        a = linear(scatter_sum(m, dst)) -> Atomic
        a = a / avg_neighbors
        h = linear(symmetric_contraction(a, correlation = 3, by = species) -> Hidden) -> Hidden + s
        t = t + linear(h) -> 1x0e
    }

    # last interaction (residual) and product basis, correlation 3
    s = linear(h, by = species) -> Scalars                # element-dependent self-connection
    x = linear(h) -> Hidden
    m = tensor_product(x[src], Y, weights = mlp(radial, 64, 64, 64, act = silu), mode = uvu, filter = Atomic)
    a = linear(scatter_sum(m, dst)) -> Atomic
    a = a / avg_neighbors
    h = linear(symmetric_contraction(a, correlation = 3, by = species) -> Scalars) -> Scalars + s
    t = t + mlp(h, 16, act = silu) -> 1x0e

    t = linear(t, bias = true) -> 1x0e                 # ScaleShiftMACE's scale and shift
    e = t + linear(species) -> 1x0e                    # plus the reference energy of each element
    output energy : 0e @graph = sum_nodes(e)
    output forces : 1o @node  = -grad(energy, pos)
}
