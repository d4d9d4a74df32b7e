# Galaxy morphology classifier on images, invariant to rotations by 90 degrees and reflections
# (a D4 group-convolutional network in the style of Dieleman et al. 2015 / escnn's R2Conv).
#
# Images arrive as [batch, 3, H, W] with H == W (square cut-outs centred on the galaxy, sides
# divisible by 4); the 37 outputs are the Galaxy Zoo 2 vote fractions (use a sigmoid on them).
group D4

rep Field = 8 * regular          # 8 channels, each a function on the 8 group elements
rep Wide = 16 * regular

model GalaxyCNN {
    input img : 3 @grid                                   # three colour bands: invariant pixels

    h = relu(conv2d(img, kernel = 5) -> Field)            # lifting convolution: scalars -> regular fields
    h = avg_pool2d(h, 2)
    h = relu(conv2d(h, kernel = 3, bias = true) -> Field) # group convolution: kernel basis solved by eqc
    h = max_pool2d(h, 2)                                  # max commutes with D4: it permutes regular channels
    h = relu(conv2d(h, kernel = 3) -> Wide)

    z = global_pool(group_pool(h, reduce = max))          # invariant: max over D4, mean over pixels
    output votes : 37 @graph = mlp(z, 64, act = relu) -> 37
}
