group O3

model Net {
    input pos : position @node
    input shift : 1x1o @node
    moved = pos + shift
    back = shift - pos
    output p = moved
}
