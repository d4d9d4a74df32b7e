"""Representation algebra: irreps, tensor-product descriptors and the numerics behind them."""
from .irreps import Irreps, IrrepsSyntaxError, MulIr

__all__ = ["Irreps", "IrrepsSyntaxError", "MulIr"]
