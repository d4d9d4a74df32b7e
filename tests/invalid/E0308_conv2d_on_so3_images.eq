group G = SO(3)

model Net {
    input img : 3 @grid
    output h = conv2d(img, kernel = 5, approximate = true) -> (2 + V)
}
