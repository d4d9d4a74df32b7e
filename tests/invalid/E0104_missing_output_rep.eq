group O3

model Net {
    input x : 8x0e + 4x1o @node
    h = linear(x)
    output y = norm(x)
}
