group O3

model Net {
    input species : 4x0e @node
    h = linear(specis) -> 16x0e
    output y = linear(species) -> 16x0e
}
