# a rotation declared as a vector and a vector declared as a rotation
group O3
model Net {
    input a : 1x1o @graph
    input b : 1x1o @graph
    output R : rotation @graph = a
    output S : 1x1o @graph = orthonormalize(a, b)
}
