# Three independent type errors in one model: all are reported in one run, in source order.
group O3

model Net {
    input x : 16x0e + 8x1o + 4x0o @node
    input v : 1x1o @node

    a = linear(x) -> (16x0e + 8x2e)                     # E0201: no 2e in the input
    b = tensor_product(x, v, mode = uvw) -> 8x3o        # E0203: 1o (x) 1o cannot reach 3o
    c = silu(linear(x) -> 4x0o)                         # E0302: silu on pseudoscalars

    output y = linear(x) -> 4x0e
}
