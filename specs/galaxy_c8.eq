# The galaxy classifier with rotations by 45 degrees: C8 group convolutions.
#
# Rotations by 45 degrees move pixels off the grid, so no kernel on a square grid is exactly
# C8-equivariant. `approximate = true` opts into escnn-style kernels: solved exactly on rings of
# sample points, then interpolated onto the pixels. The layers are exactly equivariant under the
# grid's own symmetries in C8 (rotations by multiples of 90 degrees, which eqc check enforces) and
# approximately under the others (eqc check measures and reports that error).
group C8 = cyclic(8)

rep Field = 6 * regular

model GalaxyC8 {
    input img : 3 @grid

    h = relu(conv2d(img, kernel = 5, approximate = true) -> Field)
    h = avg_pool2d(h, 2)
    h = relu(conv2d(h, kernel = 5, approximate = true) -> Field)
    h = avg_pool2d(h, 2)
    z = global_pool(group_pool(h, reduce = max))
    output votes : 37 @graph = mlp(z, 64, act = relu) -> 37
}
