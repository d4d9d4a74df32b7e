group O5 = O(5)

model Net {
    input x : 2 * V @graph
    output y = linear(x) -> 4 * V
}
