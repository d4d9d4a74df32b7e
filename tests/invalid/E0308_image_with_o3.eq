group O3

model Net {
    input img : 3x0e @grid
    output y = img
}
