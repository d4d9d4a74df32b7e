group O3
import "imports/cycle_b.eq"

model Net {
    input x : Shared @node
    output y = linear(x) -> 4x0e
}
