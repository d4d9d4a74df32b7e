group D4

model Net {
    input x : V @graph
    y = 2.0 * x
    output area = bilinear(x, y) -> det   # x (x) 2x is symmetric: its det part x1 y2 - x2 y1 is zero
}
