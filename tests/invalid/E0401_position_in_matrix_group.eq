group O5 = O(5)

model Net {
    input pos : position
    output y = pos
}
