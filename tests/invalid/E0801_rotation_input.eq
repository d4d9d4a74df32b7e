group O3

model Net {
    input R : rotation @graph
    input v : 1x1o @graph
    output y : 1x1o @graph = v
}
