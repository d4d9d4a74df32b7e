group Lorentz

model Tagger {
    input p : V @node
    input edges : graph
    output q = scatter_max(p[src], dst)
}
