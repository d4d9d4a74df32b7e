group O2 = O(2)
soft group O3

model Net {
    input pos : position @node
    input h : 4 @node
    output y : 1 @node = linear(h) -> 1
}
