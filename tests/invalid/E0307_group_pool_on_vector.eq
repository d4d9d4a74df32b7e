group D4

model Net {
    input img : V @grid
    output s = global_pool(group_pool(img))
}
