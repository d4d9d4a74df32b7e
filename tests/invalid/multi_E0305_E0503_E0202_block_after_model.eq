# The model comes first and calls a block declared below it.  The block's error is found
# while inlining, before the model's own later errors, but diagnostics are sorted by position.
group O3

model Net {
    input h : 8x0e + 4x1o @node
    input edges : graph
    m = message(h)
    bad_mlp = mlp(h, 16) -> 4x0e                        # E0305
    bad_max = scatter_max(h[src], dst)                  # E0503
    output y = scatter_sum(h[src], dst)
}

block message(h) {
    s = linear(h) -> 8x0e
    return s + h                                        # E0202
}
