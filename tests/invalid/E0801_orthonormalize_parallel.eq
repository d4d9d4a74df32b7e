group O3

model Net {
    input v : 1x1o @graph
    input h : 4x1o @graph
    a = linear(v) -> 1x1o
    output R : rotation @graph = orthonormalize(a, -2.0 * v)
}
