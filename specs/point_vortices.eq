# Point-vortex dynamics in the plane, equivariant under O(2) (rotations and reflections) and
# translations: predict each vortex's velocity from the others' positions and circulations.
#
# Circulation is a pseudoscalar (`det`: a reflection reverses the sense of rotation), and the
# Biot-Savart velocity Gamma J r / |r|^2 turns r by 90 degrees, which no O(2)-equivariant linear
# map of r alone can do; the solver finds it in the bilinear map det x V -> V. Edge geometry also
# carries freq(2), the irrep that turns twice as fast as the plane (O(2) analytic irreps).
group O2 = O(2)

rep Hidden = 8 + 4 * V + 2 * freq(2)

model PointVortices(cutoff = 3.0) {
    input pos : position                                   # [num_nodes, 2]
    input circulation : det @node                          # Gamma, a pseudoscalar
    input edges : graph

    r = pos[dst] - pos[src]
    radial = mlp(bessel(norm(r), n = 8, cutoff = cutoff), 32, act = silu) -> 8
    geometry = concat(r, bilinear(r, r) -> freq(2))        # the direction, and twice its angle
    swirl = bilinear(circulation[src], geometry) -> (V + freq(2))
    m = bilinear(radial, concat(geometry, swirl)) -> (4 * V + 2 * freq(2))
    h = scatter_sum(m, dst)
    h = gate(linear(concat(norm(h), h)) -> (8 + 6 + 4 * V + 2 * freq(2))) -> Hidden
    output velocity : V @node = linear(h) -> V
}
