group SO3
soft group O3

model Net {
    input v : 1x1 @node
    output y : 1x1 @node = linear(v) -> 1x1
}
