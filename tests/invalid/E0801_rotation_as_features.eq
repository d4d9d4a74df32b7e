group O3

model Net {
    input a : 1x1o @graph
    input b : 1x1o @graph
    R = orthonormalize(a, b)
    output y : 1x1o @graph = linear(R) -> 1x1o
}
