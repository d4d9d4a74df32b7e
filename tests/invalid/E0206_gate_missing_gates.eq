group O5 = O(5)

model Net {
    input x : 4 + 2 * V @graph
    output y = gate(x) -> (4 + 2 * V)
}
