group O3

block ping(h) {
    return pong(h)
}

block pong(h) {
    return ping(h)
}

model Net {
    input x : 8x0e @node
    output y = ping(x)
}
