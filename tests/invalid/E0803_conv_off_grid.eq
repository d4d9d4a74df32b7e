group O3

model Net {
    input z : 4x0e @node
    O = orientations(n = 8, approximate = true)
    output h : 4x0e @node = orientation_conv(z, O)
}
