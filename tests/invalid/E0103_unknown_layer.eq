group O3

model Net {
    input x : 8x0e + 4x1o @node
    h = lienar(x) -> 8x0e
    output y = norm(x)
}
