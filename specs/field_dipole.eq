# A group declared only by its generators: C_inf_v, the symmetry of a molecule in a uniform
# electric field along z (rotations about the field axis and mirror planes containing it).
# Nothing about this group is built in; eqc derives every equivariant map from the generators.
# The solver finds, among others, that V -> scalar now has a solution (the height along the field).
group Cinfv = matrix_group(
    lie = [[[0, -1, 0], [1, 0, 0], [0, 0, 0]]],           # rotations about z
    discrete = [[[1, 0, 0], [0, -1, 0], [0, 0, 1]]],      # reflection y -> -y (a mirror plane through z)
)

model FieldDipole {
    input r : 4 * V @graph                                # four atom positions relative to their centre

    heights = linear(r) -> 4                              # z coordinates: invariant under C_inf_v
    pairs = bilinear(r, r) -> 10                          # invariant products of positions
    s = concat(heights, pairs)
    w = mlp(s, 32, act = silu) -> 4
    output energy : 1 @graph = mlp(s, 32, act = silu) -> 1
    output dipole : V @graph = linear(gate(concat(w, r)) -> (4 * V)) -> V
}
