# DeepSets (Zaheer et al. 2017): a permutation-invariant model of sets of 8 elements.
#
# With the symmetric group S8 acting on the 8 set members, the compiler solves the equivariant
# maps itself: V -> V has the two-dimensional basis {identity, all-ones} (the DeepSets layer
# lambda x + gamma sum(x)), V -> scalar is the sum over members.
# A set with 3 features per member arrives as [num_sets, 3 * 8] (feature-major: x[:, f * 8 + i]).
group S8 = symmetric(8)

rep Members = 16 * V                                     # 16 features per member

model DeepSets(layers = 2) {
    input x : 3 * V @graph

    h = relu(linear(x, bias = true) -> Members)          # pointwise: S8 only permutes coordinates
    repeat layers {
        h = h + relu(linear(h, bias = true) -> Members)
    }
    pooled = concat(linear(h) -> 16, group_pool(h, reduce = max))   # sum and max over members
    output y : 1 @graph = mlp(pooled, 32, act = relu) -> 1
}
