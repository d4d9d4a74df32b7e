group O3
import "imports/does_not_exist.eq"

model Net {
    input x : 8x0e @node
    output y = linear(x) -> 4x0e
}
