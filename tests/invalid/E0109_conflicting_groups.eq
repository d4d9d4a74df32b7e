group O3
import "imports/so3_reps.eq"

model Net {
    input x : 8x0e @node
    output y = linear(x) -> 4x0e
}
