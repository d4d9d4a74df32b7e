group O3

model Net {
    input species : 4x0e @node
    input pos : position @node
    h = linear(pos) -> 4x1o
    output y = linear(species) -> 2x0e
}
