group D4

model Net {
    input x : scalar @graph
    h1 = linear(x) -> (V**2)        # reaches only the invariant part of V**2
    output y = linear(h1) -> (det)  # V**2 contains det, but h1 carries none of it
}
