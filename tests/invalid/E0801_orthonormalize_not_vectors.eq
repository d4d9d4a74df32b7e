group O3

model Net {
    input a : 2x1o @graph
    input b : 1x1o @graph
    output R : rotation @graph = orthonormalize(a, b)
}
