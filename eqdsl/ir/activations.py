"""Pointwise functions a spec may apply, with their parity.

The parity decides where a function may act (see Group.pointwise): any
function on invariant scalars; on O(3) pseudoscalars (0o) only odd functions
keep the parity, and even ones make the result invariant.  The runtime table in
backends/reference must list the same names (a test checks the parities
numerically).
"""
PARITY = {
    "identity": "odd",
    "silu": "none",
    "relu": "none",
    "gelu": "none",
    "sigmoid": "none",
    "softplus": "none",
    "exp": "none",
    "tanh": "odd",
    "sin": "odd",
    "abs": "even",
    "cos": "even",
    "square": "even",
}
