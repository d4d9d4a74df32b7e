group O3
import "imports/broken.eq"

model Net {
    input x : Hidden @node
    output y = linear(x) -> 4x0e
}
