group D4

model Net {
    input img : 1 @grid
    h = conv2d(img, kernel = 3) -> (2 * regular)   # a 3x3 window of scalars has no det part
    z = conv2d(h, kernel = 1) -> (det + regular)
    output y = global_pool(z)
}
