group C8 = cyclic(8)

model GalaxyCNN {
    input img : 3 @grid
    output h = conv2d(img, kernel = 5) -> (4 * regular)
}
