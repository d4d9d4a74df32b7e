group O3
import 'common.eq'

model Net {
    input x : 8x0e @node
    output y = linear(x) -> 4x0e
}
