# Modèle écrit en Latin-1
group O3

model Net {
    input x : 8x0e @node
    output y = x
}
