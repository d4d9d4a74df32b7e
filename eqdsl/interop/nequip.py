"""NequIP models of the nequip package (0.19, e3nn 0.6) as eqdsl modules with the same weights.

``from_nequip(model)`` reads a model built by ``nequip.model.NequIPGNNModel`` (or its presets),
writes the eqdsl spec of the same architecture (``nequip_spec``), compiles it and copies the weights.
What NequIP computes, and where its spec says it:

* node features and the self-connection attributes are one ``torch.nn.Embedding`` of the type:
  ``z = linear(types) -> Embed`` on the one-hot types (eqdsl's 1/sqrt(T) folded into the weights);
* edge vectors point from the receiving atom to the sending one (``r = pos[src] - (pos[dst] + shift)``),
  Bessel functions times NequIP's polynomial cutoff; NequIP's prefactor 2/r_max instead of eqdsl's
  sqrt(2/r_max) goes into the first radial weights;
* each ConvNetLayer: linear, channelwise (uvu) product with the edge harmonics weighted by the radial
  MLP, sum over neighbours over sqrt(avg_num_neighbors), linear, the self-connection (a fully connected
  product with the type embedding) where NequIP has one, gate (silu on even scalars and gates, tanh on
  odd scalars), and the residual where NequIP adds one;
* the readout (linear or MLP, no biases), per-type scales and shifts (``linear(e, by = types, bias =
  true)``), the sum over atoms; forces are -dE/dpos, stress from the strain (``eqdsl.atoms``).

The eqdsl module takes the one-hot of each atom's type in ``type_names`` order
(``module.type_names``; for chemical symbols, ``eqdsl.atoms`` and ``eqdsl.ase.Calculator`` accept them
as ``species``).  Anything else in the model (a pair potential such as ZBL, per-edge-type cutoffs,
per-type neighbour normalisation, a norm nonlinearity, other activations, graph-field embeddings,
trained Bessel roots, weight parametrisations) raises ``UnsupportedModel`` naming it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from . import UnsupportedModel
from ._spec import RepNames, spelled
from ._weights import (channel_values, channels_of, copy_e3nn_linear, e3nn_linear_matrix, e3nn_tp_tensor, num_channels,
                       set_linear, set_mlp, set_uvw_tp, uvu_columns, Modules)

NODE_FEATURES, NODE_ATTRS, PER_ATOM_ENERGY = "node_features", "node_attrs", "atomic_energy"


@dataclass(frozen=True)
class Layer:
    """One ConvNetLayer: representations as eqdsl spells them (e3nn's spelling is the same)."""
    irreps_in: str
    gate_in: str            # scalars + one 0e gate per gated irrep + gated: eqdsl's gate layout
    irreps_out: str
    radial_widths: tuple[int, ...]
    self_connection: bool
    residual: bool

    def self_connection_runs(self) -> list[tuple[str, bool]]:
        """The gate input as runs of blocks the self-connection (h times invariant attributes) reaches or
        not: it reaches exactly the irreps h carries."""
        have = {part.split("x")[1] for part in self.irreps_in.split("+")}
        runs: list[tuple[list[str], bool]] = []
        for part in self.gate_in.split("+"):
            reached = part.split("x")[1] in have
            if runs and runs[-1][1] == reached:
                runs[-1][0].append(part)
            else:
                runs.append(([part], reached))
        return [("+".join(parts), reached) for parts, reached in runs]

    def block_key(self) -> tuple:
        return (self.irreps_in, self.gate_in, self.irreps_out, self.radial_widths, self.self_connection,
                self.residual)


@dataclass(frozen=True)
class Architecture:
    type_names: tuple[str, ...]
    r_max: float
    lmax: int
    num_bessels: int
    cutoff_p: int
    embed_features: int
    avg_num_neighbors: float
    layers: tuple[Layer, ...]
    readout_widths: tuple[int, ...]  # hidden widths of the per-atom energy MLP (none: one linear map)


def from_nequip(model, backend: str = "auto") -> torch.nn.Module:
    """The eqdsl module computing what `model` (a nequip GraphModel) computes, with its weights.

    Returned in the model's dtype, on the CPU, in eval mode; ``.type_names`` lists the types in the
    order of the one-hot `species` input.
    """
    from ..api import compile_file

    parts = _Parts(model)
    arch = parts.architecture()
    compiled = compile_file("<nequip>", text=nequip_spec(arch))
    module = compiled.model_class()(cutoff=arch.r_max, backend=backend)
    module = module.to(torch.float64)
    _copy_weights(parts, arch, module)
    module = module.to(parts.dtype).eval()
    module.type_names = arch.type_names
    return module


def nequip_spec(arch_or_model) -> str:
    """The eqdsl spec of a NequIP architecture (an `Architecture`, or a nequip model to read one from)."""
    arch = arch_or_model if isinstance(arch_or_model, Architecture) else _Parts(arch_or_model).architecture()
    rep = RepNames()

    types = rep(f"{len(arch.type_names)}x0e", "Types")
    embed = rep(f"{arch.embed_features}x0e", "Embed")
    blocks: dict[tuple, str] = {}
    block_text: list[str] = []
    for layer in arch.layers:
        if layer.block_key() in blocks:
            continue
        name = f"interaction{len(blocks) + 1}" if len({lay.block_key() for lay in arch.layers}) > 1 else "interaction"
        blocks[layer.block_key()] = name
        hidden_in = rep(layer.irreps_in, "Features")
        gate_in = rep(layer.gate_in, "GateIn")
        out = rep(layer.irreps_out, "Features")
        widths = ", ".join(str(w) for w in layer.radial_widths)
        lines = [f"block {name}({_call_args(layer)}) {{",
                 f"    x = linear(h) -> {hidden_in}",
                 f"    m = tensor_product(x[src], Y, weights = mlp(radial, {widths}, act = silu), mode = uvu, "
                 f"filter = {gate_in})",
                 ]
        runs = layer.self_connection_runs()
        if not layer.self_connection:
            lines.append(f"    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> {gate_in}")
        elif len(runs) == 1:
            lines += [f"    y = linear(scatter_sum(m, dst) / avg_neighbors ** 0.5) -> {gate_in}",
                      f"    y = y + tensor_product(h, z, mode = uvw) -> {gate_in}        # self-connection"]
        else:
            # the self-connection reaches only the irreps h has: the others take the convolution alone
            pieces = []
            for irreps, reached in runs:
                part = rep(irreps, f"{gate_in}Part")
                pieces.append(f"linear(a) -> {part}" + (f" + tensor_product(h, z, mode = uvw) -> {part}" if reached else ""))
            lines += ["    a = scatter_sum(m, dst) / avg_neighbors ** 0.5",
                      "    y = concat(" + ",\n               ".join(pieces) + ")        # self-connection where h reaches"]
        nonlinearity = f"gate(y, act = silu, odd_act = tanh, gate_act = silu) -> {out}"
        lines.append(f"    return {'h + ' if layer.residual else ''}{nonlinearity}")
        lines.append("}")
        block_text.append("\n".join(lines))

    def call(layer: Layer) -> str:
        return f"h = {blocks[layer.block_key()]}({_call_args(layer)})"

    layers = arch.layers
    # first, middle layers all alike, last: the middle ones repeat `layers - 2` times, so that the number of
    # layers stays a parameter of the spec (eqc compile -D layers=N)
    repeated = len(layers) >= 3 and len({lay.block_key() for lay in layers[1:-1]}) == 1
    if repeated:
        calls = [f"    {call(layers[0])}", f"    repeat layers - 2 {{\n        {call(layers[1])}\n    }}",
                 f"    {call(layers[-1])}"]
    else:  # runs of equal consecutive layers as repeats of a literal count
        calls, i = [], 0
        while i < len(layers):
            j = i
            while j + 1 < len(layers) and layers[j + 1].block_key() == layers[i].block_key():
                j += 1
            calls.append(f"    {call(layers[i])}" if i == j else f"    repeat {j - i + 1} {{\n        {call(layers[i])}\n    }}")
            i = j + 1

    if arch.readout_widths:
        readout = f"mlp(h, {', '.join(str(w) for w in arch.readout_widths)}, act = silu) -> 1x0e"
    else:
        readout = "linear(h) -> 1x0e"
    names = ", ".join(arch.type_names)
    text = [
        "# NequIP as the nequip package (0.19) builds it (nequip.model.NequIPGNNModel); written by",
        "# eqdsl.interop.nequip.nequip_spec, which eqdsl.interop.nequip.from_nequip compiles to import a",
        "# trained model's weights.",
        "group O3",
        "",
        f"const L = {arch.lmax}",
        *(f"rep {name} = {irreps}" + (f"        # one-hot over the types, in order (the source's type_names: {names})"
                                         if name == types else "")
          for irreps, name in rep.items()),
        "",
        *(b + "\n" for b in block_text),
        f"model NequIP(cutoff = {arch.r_max!r}, avg_neighbors = {arch.avg_num_neighbors!r}"
        f"{f', layers = {len(layers)}' if repeated else ''}) {{",
        f"    input  species : {types:<8} @node",
        "    input  pos     : position @node",
        "    input  edges   : graph                       # src/dst index pairs from the caller",
        "    input  shift   : 1x1o     @edge              # periodic image of each dst, S @ cell (zeros for molecules)",
        "",
        "    r = pos[src] - (pos[dst] + shift)            # NequIP's edge vector: receiving atom to sending atom",
        "    d = norm(r)",
        "    Y = spherical_harmonics(r, lmax = L)",
        f"    radial = bessel(d, n = {arch.num_bessels}, cutoff = cutoff) * envelope(d, cutoff = cutoff, "
        f"p = {arch.cutoff_p})",
        "",
        f"    z = linear(species) -> {embed}                 # the type embedding: first features and self-connection attributes",
        "    h = z",
        *calls,
        f"    e = linear({readout}, by = species, bias = true) -> 1x0e    # per-type scale and shift",
        "    output energy : 0e @graph = sum_nodes(e)",
        "    output forces : 1o @node  = -grad(energy, pos)",
        "}",
        "",
    ]
    return "\n".join(text)


class _Parts:
    """The modules of a nequip NequIP model, checked to be what eqdsl's spec can say."""

    def __init__(self, model):
        net, self.dtype = model, torch.get_default_dtype()
        while type(net).__name__ == "GraphModel":
            self.dtype = getattr(net, "model_dtype", self.dtype)
            net = net.model
        if type(net).__name__ != "ForceStressOutput":
            raise UnsupportedModel(f"a nequip model whose outer module is {type(net).__name__} "
                                   "(expected ForceStressOutput around the energy network)")
        net = net.func
        if type(net).__name__ != "SequentialGraphNetwork":
            raise UnsupportedModel(f"an energy network of type {type(net).__name__}")
        self.convnets: list = []
        expected = ["NodeTypeEmbed", "SphericalHarmonicEdgeAttrs", "EdgeLengthNormalizer", "BesselEdgeLengthEncoding",
                    "ApplyFactor"]
        children = list(net.named_children())
        for (name, mod), kind in zip(children, expected):
            if type(mod).__name__ != kind:
                raise UnsupportedModel(f"module `{name}` of type {type(mod).__name__} where NequIP has {kind}")
        self.embed, self.spharm, self.edge_norm, self.bessel, self.factor = [m for _, m in children[:5]]
        rest = children[5:]
        while rest and type(rest[0][1]).__name__ == "ConvNetLayer":
            self.convnets.append(rest.pop(0)[1])
        tail = [type(m).__name__ for _, m in rest]
        if tail != ["ScalarMLP", "PerTypeScaleShift", "AtomwiseReduce"]:
            extra = [f"{n} ({type(m).__name__})" for n, m in rest
                     if type(m).__name__ not in ("ScalarMLP", "PerTypeScaleShift", "AtomwiseReduce")]
            raise UnsupportedModel(f"modules after the convolutions that eqdsl's NequIP does not have: "
                                   f"{', '.join(extra) or ', '.join(tail)} (a pair potential such as ZBL is not supported)")
        self.readout, self.scale_shift, self.reduce = [m for _, m in rest]
        if not self.convnets:
            raise UnsupportedModel("a NequIP model without convolution layers")

    def architecture(self) -> Architecture:
        embed = self.embed
        if getattr(embed, "do_categorical_graph_field_embed", False):
            raise UnsupportedModel("categorical graph-field embeddings (categorical_graph_field_embed)")
        if not getattr(embed, "set_features", True):
            raise UnsupportedModel("a type embedding that does not set the node features")
        type_names = tuple(getattr(embed, "type_names", None) or self.scale_shift.type_names)
        if not all(t.isalnum() for t in type_names):
            raise UnsupportedModel(f"type names that are not alphanumeric: {type_names}")
        weight = embed.embed_module.weight
        if weight.shape[0] != len(type_names):
            raise UnsupportedModel(f"a type embedding of {weight.shape[0]} rows for {len(type_names)} types")

        sh = self.spharm
        lmax = max(ir.l for _, ir in sh.irreps_edge_sh)
        if str(sh.irreps_edge_sh) != "+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)):
            raise UnsupportedModel(f"edge harmonics {sh.irreps_edge_sh} (eqdsl's are all l up to lmax, parity (-1)^l)")
        if not sh.sh.normalize or sh.sh.normalization != "component":
            raise UnsupportedModel(f"spherical harmonics with normalize={sh.sh.normalize}, "
                                   f"normalization={sh.sh.normalization!r} (eqdsl: normalized, 'component')")
        if self.edge_norm._per_edge_type:
            raise UnsupportedModel("per-edge-type cutoffs (per_edge_type_cutoff)")
        r_max = float(self.edge_norm.r_max)
        bessel = self.bessel
        n = int(bessel.num_bessels)
        roots = bessel.bessel_weights.detach().cpu().to(torch.float64).reshape(-1)
        if not torch.equal(roots, torch.arange(1, n + 1, dtype=torch.float64)):
            raise UnsupportedModel("trained Bessel roots (bessel_trainable): eqdsl's Bessel functions have k = 1..n")
        cutoff = bessel.cutoff
        if type(cutoff).__name__ not in ("PolynomialCutoff", "RecursiveScriptModule") or not hasattr(cutoff, "p"):
            raise UnsupportedModel(f"a cutoff of type {type(cutoff).__name__}")
        p = float(cutoff.p)
        if not p.is_integer():
            raise UnsupportedModel(f"a polynomial cutoff of non-integer exponent p = {p}")
        if self.factor.in_field != "edge_embedding" or self.factor.out_field != "edge_embedding":
            raise UnsupportedModel(f"a factor applied to `{self.factor.in_field}`")

        layers, avg = [], None
        for k, convnet in enumerate(self.convnets):
            layer, n_avg = self._layer(k, convnet)
            if avg is not None and n_avg != avg:
                raise UnsupportedModel("different avg_num_neighbors in different layers")
            avg = n_avg
            layers.append(layer)
        if layers[-1].irreps_out != f"{num_channels_of(layers[-1].irreps_out)}x0e":
            raise UnsupportedModel(f"a last layer with non-scalar features {layers[-1].irreps_out}")

        readout_widths = self._readout_widths()
        if self.reduce.reduce != "sum" or float(self.reduce.constant) != 1.0:
            raise UnsupportedModel(f"an energy reduction `{self.reduce.reduce}` with constant {self.reduce.constant}")
        return Architecture(type_names, r_max, lmax, n, int(p), int(weight.shape[1]), avg, tuple(layers),
                            readout_widths)

    def _layer(self, k: int, convnet) -> tuple[Layer, float]:
        conv, gate = convnet.conv, convnet.equivariant_nonlin
        where = f"layer {k}"
        if type(conv).__name__ != "InteractionBlock":
            raise UnsupportedModel(f"{where}: a convolution of type {type(conv).__name__}")
        if type(gate).__name__ != "Gate":
            raise UnsupportedModel(f"{where}: the {type(gate).__name__} nonlinearity (eqdsl imports gates only)")
        for _, ir in gate.irreps_gates:
            if str(ir) != "0e":
                raise UnsupportedModel(f"{where}: gates of parity {ir}")
        self._check_acts(where, gate)
        norm = conv.avg_num_neighbors_norm.norm_const
        if norm.numel() != 1:
            raise UnsupportedModel(f"{where}: per-type avg_num_neighbors")
        factor = float(norm.reshape(-1)[0])
        avg = 1.0 / factor ** 2
        short = float(f"{avg:.12g}")  # the value the model was given, where 1/sqrt of it is the same factor
        avg = short if 1.0 / math.sqrt(short) == factor else avg
        irreps_in = conv.irreps_in[NODE_FEATURES]
        if conv.sc is not None and conv.sc.irreps_in2 != conv.irreps_in[NODE_ATTRS]:
            raise UnsupportedModel(f"{where}: a self-connection on {conv.sc.irreps_in2}")
        scalars, gated = gate.irreps_scalars, gate.irreps_gated
        gate_in = "+".join([str(m) for m in scalars] + ([f"{gated.num_irreps}x0e"] if len(gated) else [])
                           + [str(m) for m in gated])
        out = "+".join(str(m) for m in gate.irreps_out)
        widths = tuple(int(d) for d in conv.edge_mlp.dims[1:-1])
        if not widths:
            raise UnsupportedModel(f"{where}: a radial network without hidden layers (radial_mlp_depth = 0)")
        _mlp_weights(conv.edge_mlp, f"{where} radial MLP")
        return Layer(spelled(irreps_in), gate_in, out, widths, conv.sc is not None, bool(convnet.resnet)), avg

    @staticmethod
    def _check_acts(where: str, gate) -> None:
        expected = {1: (torch.nn.functional.silu, "silu"), -1: (torch.tanh, "tanh")}
        for what, irreps, activation in (("scalar", gate.irreps_scalars, gate.act_scalars),
                                         ("gate", gate.irreps_gates, gate.act_gates)):
            for (_, ir), act in zip(irreps, activation.acts):
                fn = getattr(act, "f", act)
                want, name = expected[ir.p]
                if fn is not want:
                    raise UnsupportedModel(f"{where}: the {getattr(fn, '__name__', fn)} activation on {what}s {ir} "
                                           f"(eqdsl's NequIP: {name})")

    def _readout_widths(self) -> tuple[int, ...]:
        mlp = self.readout.mlp_module
        if self.readout.field != NODE_FEATURES or self.readout.out_field != PER_ATOM_ENERGY:
            raise UnsupportedModel(f"a readout from `{self.readout.field}` to `{self.readout.out_field}`")
        _mlp_weights(mlp, "readout MLP")
        return tuple(int(d) for d in mlp.dims[1:-1])


def _call_args(layer: Layer) -> str:
    return "h, z, Y, radial, avg_neighbors" if layer.self_connection else "h, Y, radial, avg_neighbors"


def num_channels_of(irreps: str) -> int:
    return sum(int(part.split("x")[0]) for part in irreps.split("+"))


def _mlp_weights(fn, what: str) -> list[torch.Tensor]:
    """The weight matrices of nequip's ScalarMLPFunction, alpha folded in; refuses anything but
    bias-free linear layers with SiLU between them."""
    from torch.nn.utils import parametrize

    mlp = fn.mlp
    if type(mlp).__name__ == "DeepLinearMLP":
        raise UnsupportedModel(f"{what}: an MLP without nonlinearities")
    weights, acts = [], 0
    for mod in mlp:
        kind = type(mod).__name__
        if kind == "ScalarLinearLayer":
            if mod.bias is not None:
                raise UnsupportedModel(f"{what}: biases")
            if parametrize.is_parametrized(mod):
                raise UnsupportedModel(f"{what}: a weight parametrization (spectral, weight or orthogonal norm)")
            weights.append(mod.weight.detach().cpu().to(torch.float64) * float(mod.alpha))
        elif isinstance(mod, torch.nn.SiLU):
            acts += 1
        else:
            raise UnsupportedModel(f"{what}: the {kind} nonlinearity (eqdsl's NequIP: silu)")
    if acts != len(weights) - 1:
        raise UnsupportedModel(f"{what}: {len(weights)} layers with {acts} nonlinearities")
    return weights


def _gate_perm(gate) -> list[int]:
    """Source channel (in e3nn's sorted gate input) of each channel of eqdsl's [scalars | gates | gated]."""
    irreps_in = gate.sc.irreps_in
    ids = list(range(num_channels(irreps_in)))
    scalars, gates, gated = gate.sc(channel_values(irreps_in, ids))
    return (channels_of(gate.irreps_scalars, scalars) + channels_of(gate.irreps_gates, gates)
            + channels_of(gate.irreps_gated, gated))


def _copy_weights(parts: _Parts, arch: Architecture, module) -> None:
    mods = Modules(module, "NequIP")
    mods.take("SphericalHarmonics")
    num_types = len(arch.type_names)
    embed = mods.take("Linear")
    with torch.no_grad():
        embed.weight.copy_((parts.embed.embed_module.weight.detach().cpu().to(torch.float64)
                            * math.sqrt(num_types)).reshape(-1))
    # NequIP's radial input is eqdsl's times factor * r_max / (pi sqrt(2 / r_max)): eqdsl's Bessel functions
    # carry sqrt(2/c) sin(k pi d / c) / d, NequIP's sinc(k d / c) k = sin(k pi d / c) c / (pi d), then the factor
    radial_scale = float(parts.factor.factor) * arch.r_max / (math.pi * math.sqrt(2.0 / arch.r_max))
    attrs = list(range(arch.embed_features))
    for k, (convnet, layer) in enumerate(zip(parts.convnets, arch.layers)):
        conv, gate = convnet.conv, convnet.equivariant_nonlin
        where = f"layer {k}"
        copy_e3nn_linear(mods.take("Linear"), conv.linear_1, f"{where} linear_1")
        mlp = mods.take("MLP")
        tp = mods.take("TensorProductLayer")
        columns, factors, out_channels = uvu_columns(conv.tp_scatter.tp, tp.desc)
        set_mlp(mlp, _mlp_weights(conv.edge_mlp, f"{where} radial MLP"), radial_scale, columns, factors)
        gate_perm = _gate_perm(gate)
        mid_perm = [c for block in out_channels for c in block]
        linear_2 = e3nn_linear_matrix(conv.linear_2)
        sc = e3nn_tp_tensor(conv.sc) if conv.sc is not None else None
        runs = layer.self_connection_runs() if sc is not None else [(layer.gate_in, False)]
        start = 0
        for irreps, reached in runs:  # the gate input, piece by piece as the spec writes it
            cols = gate_perm[start:start + num_channels_of(irreps)]
            start += len(cols)
            piece = mods.take("Linear")
            set_linear(piece, linear_2[:, cols], mid_perm, range(len(cols)), f"{where} linear_2")
            if reached:
                tp_sc = mods.take("TensorProductLayer")
                set_uvw_tp(tp_sc, sc[:, :, cols], range(num_channels(tp_sc.desc.irreps_in1)), attrs,
                           range(len(cols)), f"{where} self-connection")
            elif sc is not None and sc[:, :, cols].abs().max() > 0:
                raise UnsupportedModel(f"{where}: a self-connection into {irreps}, which it cannot reach")
        mods.take("Gate")
    weights = _mlp_weights(parts.readout.mlp_module, "readout MLP")
    if arch.readout_widths:
        set_mlp(mods.take("MLP"), weights)
    else:
        readout = mods.take("Linear")
        with torch.no_grad():
            readout.weight.copy_((weights[0] * math.sqrt(weights[0].shape[0])).reshape(-1))
    scale_shift = mods.take("SelectedLinearLayer")
    ss = parts.scale_shift
    scales = ss.scales.detach().cpu().to(torch.float64).reshape(-1) if ss.has_scales else torch.ones(1, dtype=torch.float64)
    shifts = ss.shifts.detach().cpu().to(torch.float64).reshape(-1) if ss.has_shifts else torch.zeros(1, dtype=torch.float64)
    scales, shifts = scales.expand(num_types), shifts.expand(num_types)
    with torch.no_grad():
        for t, per_type in enumerate(scale_shift.maps):
            per_type.weight.fill_(float(scales[t]))
            per_type.bias.fill_(float(shifts[t]))
    mods.done()
