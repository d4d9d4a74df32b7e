group O3

block mix(a, b) {
    return a + b
}

model Net {
    input x : 8x0e @node
    h = mix(x)
    output y = mix(x, x)
}
