"""MACE models of mace-torch (0.3.16, e3nn 0.4.4) as eqdsl modules with the same weights.

``from_mace(model)`` reads a ``mace.modules.MACE`` or ``ScaleShiftMACE``, writes the eqdsl spec of the
same architecture (``mace_spec``), compiles it and copies the weights.  What MACE computes, and where
its spec says it:

* the node embedding is a linear map of the one-hot elements; edge vectors point from the sender to
  the receiver's image (``r = pos[dst] - pos[src] + shift``), Bessel functions times the polynomial
  cutoff (the same functions in both packages);
* each interaction: ``linear_up``, a channelwise (uvu) product with the edge harmonics weighted by the
  radial MLP, the sum over neighbours, a linear map and the division by avg_num_neighbors; the first
  kind (RealAgnosticInteractionBlock) then applies its element-dependent linear map (``skip_tp``: a
  fully connected product with the one-hot, ``linear(a, by = species)``), the residual kind
  (RealAgnosticResidualInteractionBlock) applies it to the layer's input and adds it after the product;
* the product basis: ``symmetric_contraction(a, correlation = nu, by = species)`` and a linear map.
  MACE's U matrices are generalised Clebsch-Gordan couplings, not symmetrised; only their part
  symmetric in the slots acts on a_c x ... x a_c, and that part is written in eqdsl's basis of
  symmetric maps (``_weights.set_symmetric_order``), checked to be exact;
* a linear readout after every layer but the last, an MLP readout after the last, ScaleShiftMACE's
  scale and shift on the sum (``linear(e, bias = true)``) and the per-element reference energies
  (``linear(species) -> 1x0e``).

The eqdsl module takes the one-hot of each atom's element in ``atomic_numbers`` order
(``module.type_names`` holds their symbols).  Anything else (a pair repulsion, distance transforms,
other radial bases or interaction blocks, several heads, extra embeddings, cuequivariance or
OpenEquivariance layers) raises ``UnsupportedModel`` naming it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from . import UnsupportedModel
from ._spec import RepNames, spelled
from ._weights import (Modules, copy_e3nn_linear, e3nn_linear_matrix, e3nn_tp_tensor, num_channels, set_linear, set_mlp,
                       set_symmetric_order, uvu_columns)

PLAIN, RESIDUAL = "RealAgnosticInteractionBlock", "RealAgnosticResidualInteractionBlock"


@dataclass(frozen=True)
class Layer:
    """One interaction and product; irreps spelled as e3nn and eqdsl both spell them."""
    residual: bool                       # RealAgnosticResidualInteractionBlock (else RealAgnosticInteractionBlock)
    irreps_in: str
    up: str                              # linear_up's output: what the convolution reads
    inter: str                           # the interaction's output: the symmetric contraction's input
    out: str                             # the product's output: the next layer's input
    radial_widths: tuple[int, ...]
    correlation: int
    readout: Optional[tuple[int, ...]]   # () a linear readout, widths an MLP readout, None no readout


@dataclass(frozen=True)
class Architecture:
    atomic_numbers: tuple[int, ...]
    r_max: float
    lmax: int
    num_bessel: int
    cutoff_p: int
    avg_num_neighbors: float
    layers: tuple[Layer, ...]
    scale_shift: bool                    # ScaleShiftMACE: scale * (sum of readouts) + shift
    element_weights: bool                # symmetric contractions with weights per element (not agnostic)

    @property
    def type_names(self) -> tuple[str, ...]:
        from ase.data import chemical_symbols

        return tuple(chemical_symbols[z] for z in self.atomic_numbers)


def from_mace(model, backend: str = "auto") -> torch.nn.Module:
    """The eqdsl module computing what `model` (a mace-torch MACE or ScaleShiftMACE) computes, with its
    weights: energy (e0 included), forces.  Returned in the model's dtype, on the CPU, in eval mode."""
    from ..api import compile_file
    from ..diagnostics import CompileError

    arch = architecture(model)
    try:
        compiled = compile_file("<mace>", text=mace_spec(arch))
    except CompileError as e:  # e.g. hidden irreps a product cannot reach, which MACE leaves zero
        raise UnsupportedModel(f"an architecture eqdsl's typing rules refuse:\n{e}") from None
    module = compiled.model_class()(cutoff=arch.r_max, avg_neighbors=arch.avg_num_neighbors, backend=backend)
    module = module.to(torch.float64)
    _copy_weights(model, arch, module)
    dtype = next(iter(model.parameters())).dtype
    module = module.to(dtype).eval()
    module.type_names = arch.type_names
    return module


def mace_spec(arch_or_model) -> str:
    """The eqdsl spec of a MACE architecture (an `Architecture`, or a mace-torch model to read one from)."""
    arch = arch_or_model if isinstance(arch_or_model, Architecture) else architecture(arch_or_model)
    rep = RepNames()

    elements = rep(f"{len(arch.atomic_numbers)}x0e", "Elements")
    embed = rep(arch.layers[0].irreps_in, "Scalars")
    by = ", by = species" if arch.element_weights else ""
    readouts = 0

    def layer_lines(label: str, layer: Layer, indent: str = "    ") -> list[str]:
        nonlocal readouts
        up, inter, out = rep(layer.up, "Features"), rep(layer.inter, "Atomic"), rep(layer.out, "Hidden")
        widths = ", ".join(str(w) for w in layer.radial_widths)
        kind = "residual" if layer.residual else "first kind"
        lines = [f"# {label} ({kind}) and product basis, correlation {layer.correlation}"]
        if layer.residual:
            lines.append(f"s = linear(h, by = species) -> {out}                # element-dependent self-connection")
        lines += [f"x = linear(h) -> {up}",
                  f"m = tensor_product(x[src], Y, weights = mlp(radial, {widths}, act = silu), mode = uvu, "
                  f"filter = {inter})",
                  f"a = linear(scatter_sum(m, dst)) -> {inter}",
                  "a = a / avg_neighbors"]
        if not layer.residual:
            lines.append(f"a = linear(a, by = species) -> {inter}")
        product = f"linear(symmetric_contraction(a, correlation = {layer.correlation}{by}) -> {out}) -> {out}"
        lines.append(f"h = {product}" + (" + s" if layer.residual else ""))
        if layer.readout is not None:
            readout = (f"mlp(h, {', '.join(str(w) for w in layer.readout)}, act = silu) -> 1x0e" if layer.readout
                       else "linear(h) -> 1x0e")
            lines.append(f"t = {'t + ' if readouts else ''}{readout}" + ("            # readout" if not readouts else ""))
            readouts += 1
        return [indent + line for line in lines]

    layers = arch.layers
    middle = _middle_layer(arch)
    # first, middle layers all alike, last: the middle ones repeat `layers - 2` times, so that the number of
    # layers stays a parameter of the spec (eqc compile -D layers=N), as mace-torch's num_interactions
    repeated = middle is not None and all(layer == middle for layer in layers[1:-1])
    body: list[str] = []
    if repeated:
        body += layer_lines("interaction 1", layers[0]) + [""]
        body += ["    repeat layers - 2 {"] + layer_lines("interactions 2 to layers - 1", middle, "        ") + ["    }", ""]
        body += layer_lines("last interaction", layers[-1]) + [""]
    else:
        for k, layer in enumerate(layers, start=1):
            body += layer_lines(f"interaction {k}", layer) + [""]
    if arch.scale_shift:
        body.append("    t = linear(t, bias = true) -> 1x0e                 # ScaleShiftMACE's scale and shift")
    body.append("    e = t + linear(species) -> 1x0e                    # plus the reference energy of each element")
    names = ", ".join(arch.type_names)
    text = [
        "# MACE as mace-torch (0.3.16) builds it (mace.modules.ScaleShiftMACE with RealAgnosticInteractionBlock",
        "# first and RealAgnosticResidualInteractionBlock after); written by eqdsl.interop.mace.mace_spec, which",
        "# eqdsl.interop.mace.from_mace compiles to import a trained model's weights.",
        "group O3",
        "",
        f"const L = {arch.lmax}",
        *(f"rep {name} = {irreps}" + (f"        # one-hot over the elements, in order: {names}" if name == elements else "")
          for irreps, name in rep.items()),
        "",
        f"model MACE(cutoff = {arch.r_max!r}, avg_neighbors = {arch.avg_num_neighbors!r}"
        f"{f', layers = {len(layers)}' if repeated else ''}) {{",
        f"    input  species : {elements:<8} @node",
        "    input  pos     : position @node",
        "    input  edges   : graph                       # src (sender) / dst (receiver) index pairs",
        "    input  shift   : 1x1o     @edge              # periodic image of each dst, S @ cell (zeros for molecules)",
        "",
        "    r = pos[dst] - pos[src] + shift",
        "    d = norm(r)",
        "    Y = spherical_harmonics(r, lmax = L)",
        f"    radial = bessel(d, n = {arch.num_bessel}, cutoff = cutoff) * envelope(d, cutoff = cutoff, "
        f"p = {arch.cutoff_p})",
        f"    h = linear(species) -> {embed}",
        "",
        *body,
        "    output energy : 0e @graph = sum_nodes(e)",
        "    output forces : 1o @node  = -grad(energy, pos)",
        "}",
        "",
    ]
    return "\n".join(text)


def _middle_layer(arch: Architecture) -> Optional[Layer]:
    """The layer mace-torch builds between the first and the last (a residual interaction keeping the
    hidden irreps, a linear readout), where the first and last layers are what it builds around them."""
    first, last = arch.layers[0], arch.layers[-1]
    if len(arch.layers) < 2 or first.residual or not last.residual or first.readout != () or last.readout is None:
        return None
    return Layer(True, first.out, first.out, last.inter, first.out, last.radial_widths, last.correlation, ())


def _refuse(cond: bool, feature: str) -> None:
    if cond:
        raise UnsupportedModel(feature)


def architecture(model) -> Architecture:
    """Read a mace-torch model's architecture, refusing what eqdsl's MACE spec cannot say."""
    kind = type(model).__name__
    _refuse(kind not in ("MACE", "ScaleShiftMACE"), f"a mace model of class {kind} (eqdsl imports MACE and ScaleShiftMACE)")
    _refuse(hasattr(model, "pair_repulsion"), "a pair repulsion (ZBL, pair_repulsion = True)")
    _refuse(hasattr(model, "joint_embedding"), "extra node embeddings (embedding_specs)")
    _refuse(len(getattr(model, "heads", ["Default"])) != 1, f"several heads ({model.heads})")
    _refuse(bool(getattr(model, "lammps_mliap", False)), "the LAMMPS ML-IAP mode")
    radial = model.radial_embedding
    _refuse(hasattr(radial, "distance_transform"), "a distance transform (distance_transform)")
    _refuse(type(radial.bessel_fn).__name__ != "BesselBasis", f"the radial basis {type(radial.bessel_fn).__name__}")
    _refuse(not getattr(radial, "apply_cutoff", True), "apply_cutoff = False (the cutoff on the radial weights)")
    bessel = radial.bessel_fn
    _refuse(isinstance(bessel.bessel_weights, torch.nn.Parameter), "trainable Bessel frequencies")
    r_max = float(bessel.r_max)
    n = int(bessel.bessel_weights.numel())
    want = math.pi / r_max * torch.arange(1, n + 1, dtype=torch.float64)
    got = bessel.bessel_weights.detach().cpu().to(torch.float64)
    _refuse(not torch.allclose(got, want, rtol=1e-6, atol=0), "Bessel frequencies other than k pi / r_max")
    _refuse(abs(float(radial.cutoff_fn.r_max) - r_max) > 1e-12 * r_max, "a cutoff radius unlike the basis's")
    sh = model.spherical_harmonics
    lmax = max(ir.l for _, ir in sh.irreps_out)
    _refuse(spelled(sh.irreps_out) != "+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)),
            f"edge harmonics {sh.irreps_out} (eqdsl's are all l up to lmax, parity (-1)^l)")
    _refuse(not sh.normalize or sh.normalization != "component", "spherical harmonics not normalized with 'component'")
    energies = model.atomic_energies_fn.atomic_energies
    _refuse(energies.dim() > 1 and energies.shape[0] != 1, "per-head reference energies")

    readouts = list(model.readouts)
    n_layers = len(model.interactions)
    last_only = bool(getattr(model, "use_last_readout_only", False))
    _refuse(len(readouts) != (1 if last_only else n_layers), f"{len(readouts)} readouts for {n_layers} layers")
    agnostic = bool(getattr(model, "use_agnostic_product", False))
    layers, avg = [], None
    for k, (inter, prod) in enumerate(zip(model.interactions, model.products)):
        where = f"interaction {k}"
        name = type(inter).__name__
        _refuse(name not in (PLAIN, RESIDUAL), f"{where}: a {name} (eqdsl imports {PLAIN} and {RESIDUAL})")
        _refuse(inter.cueq_config is not None or inter.oeq_config is not None or hasattr(inter, "conv_fusion"),
                f"{where}: cuequivariance or OpenEquivariance layers (convert the model to e3nn first)")
        residual = name == RESIDUAL
        _refuse(prod.use_sc != residual, f"{where}: a product that {'ignores' if residual else 'adds'} a self-connection")
        _refuse(getattr(prod, "cueq_config", None) is not None, f"{where}: a cuequivariance product basis")
        if avg is not None and inter.avg_num_neighbors != avg:
            raise UnsupportedModel("different avg_num_neighbors in different layers")
        avg = float(inter.avg_num_neighbors)
        contraction = prod.symmetric_contractions
        contraction = getattr(contraction, "symmetric_contractions", contraction)  # the e3nn wrapper, if any
        _refuse(type(contraction).__name__ != "SymmetricContraction",
                f"{where}: a product basis of type {type(contraction).__name__}")
        corr = {c.correlation for c in contraction.contractions}
        _refuse(len(corr) != 1, f"{where}: different correlations per output irrep")
        fc = inter.conv_tp_weights
        _refuse(type(fc).__name__ != "FullyConnectedNet", f"{where}: a radial network of type {type(fc).__name__}")
        _fc_weights(fc, f"{where} radial MLP")
        if k == n_layers - 1 or not last_only:
            readout = _readout(readouts[k if not last_only else 0], f"readout {k}")
        else:
            readout = None
        layers.append(Layer(residual, spelled(inter.node_feats_irreps), spelled(inter.linear_up.irreps_out),
                            spelled(inter.linear.irreps_out), spelled(prod.linear.irreps_out),
                            tuple(int(h) for h in fc.hs[1:-1]), corr.pop(), readout))
    if layers[-1].readout and not all(part.endswith("x0e") for part in layers[-1].out.split("+")):
        raise UnsupportedModel(f"an MLP readout of non-scalar features {layers[-1].out} (keep_last_layer_irreps)")
    scale_shift = kind == "ScaleShiftMACE"
    if scale_shift:
        _refuse(model.scale_shift.scale.numel() != 1 or model.scale_shift.shift.numel() != 1,
                "per-head scales and shifts")
    numbers = tuple(int(z) for z in model.atomic_numbers.tolist())
    return Architecture(numbers, r_max, lmax, n, int(radial.cutoff_fn.p), avg, tuple(layers), scale_shift,
                        not agnostic)


def _readout(block, where: str) -> tuple[int, ...]:
    kind = type(block).__name__
    if kind == "LinearReadoutBlock":
        return ()
    _refuse(kind != "NonLinearReadoutBlock", f"{where}: a {kind}")
    acts = block.non_linearity.acts
    hidden = block.linear_1.irreps_out
    _refuse(not all(str(ir) == "0e" for _, ir in hidden), f"{where}: a hidden layer {hidden} with non-scalars")
    _refuse(len(acts) != 1 or getattr(acts[0], "f", None) is not torch.nn.functional.silu,
            f"{where}: an activation other than silu")
    return (num_channels(hidden),)


def _fc_weights(fc, what: str) -> list[torch.Tensor]:
    """e3nn FullyConnectedNet as effective matrices (x @ W0, silu, x @ W1, ...): e3nn's 1/sqrt(fan_in) and
    the normalize2mom constant of each activation folded into the matrix after it."""
    out, gain = [], 1.0
    for layer in fc:
        if layer.act is not None:
            fn = getattr(layer.act, "f", None)
            _refuse(fn is not torch.nn.functional.silu, f"{what}: an activation other than silu")
        _refuse(float(layer.var_in) != 1.0 or float(layer.var_out) != 1.0, f"{what}: variance_in/out other than 1")
        w = layer.weight.detach().cpu().to(torch.float64) / math.sqrt(layer.h_in)
        out.append(w * gain)
        gain = float(getattr(layer.act, "cst", 1.0)) if layer.act is not None and not layer.act._is_id else 1.0
    return out


def _copy_weights(model, arch: Architecture, module) -> None:
    mods = Modules(module, "MACE")
    num_elements = len(arch.atomic_numbers)
    mods.take("SphericalHarmonics")
    embed = mods.take("Linear")
    ident = lambda n: list(range(n))  # noqa: E731
    copy_e3nn_linear(embed, model.node_embedding.linear, "node embedding")
    readout_blocks = iter(model.readouts)
    for k, (layer, inter, prod) in enumerate(zip(arch.layers, model.interactions, model.products)):
        where = f"interaction {k}"
        if layer.residual:
            _set_selected(mods.take("SelectedLinearLayer"), inter.skip_tp, f"{where} skip_tp")
        copy_e3nn_linear(mods.take("Linear"), inter.linear_up, f"{where} linear_up")
        mlp = mods.take("MLP")
        tp = mods.take("TensorProductLayer")
        columns, factors, out_channels = uvu_columns(inter.conv_tp, tp.desc)
        set_mlp(mlp, _fc_weights(inter.conv_tp_weights, f"{where} radial MLP"), 1.0, columns, factors)
        linear = mods.take("Linear")
        m = e3nn_linear_matrix(inter.linear)
        set_linear(linear, m, [c for block in out_channels for c in block], ident(m.shape[1]), f"{where} linear")
        if not layer.residual:
            _set_selected(mods.take("SelectedLinearLayer"), inter.skip_tp, f"{where} skip_tp")
        _set_contraction(mods.take("SymmetricContractionLayer"), prod.symmetric_contractions, where)
        copy_e3nn_linear(mods.take("Linear"), prod.linear, f"{where} product linear")
        if layer.readout is None:
            continue
        block = next(readout_blocks)
        if layer.readout:
            act = block.non_linearity.acts[0]
            gain = 1.0 if act._is_id else float(act.cst)
            set_mlp(mods.take("MLP"), [e3nn_linear_matrix(block.linear_1), e3nn_linear_matrix(block.linear_2) * gain])
        else:
            copy_e3nn_linear(mods.take("Linear"), block.linear, f"readout {k}")
    if arch.scale_shift:
        ss = mods.take("Linear")
        with torch.no_grad():
            ss.weight.fill_(float(model.scale_shift.scale.reshape(-1)[0]) / ss.paths[0][3])
            ss.bias.fill_(float(model.scale_shift.shift.reshape(-1)[0]))
    e0 = mods.take("Linear")
    energies = model.atomic_energies_fn.atomic_energies.detach().cpu().to(torch.float64).reshape(num_elements, 1)
    set_linear(e0, energies, ident(num_elements), [0], "reference energies")
    mods.done()


def _set_selected(layer, skip_tp, what: str) -> None:
    """MACE's skip_tp, a fully connected product with the one-hot elements, as eqdsl's linear(x, by = species)."""
    t = e3nn_tp_tensor(skip_tp)  # [channels in, elements, channels out], path weights in
    if any(ir.l != 0 for _, ir in skip_tp.irreps_in2):
        raise UnsupportedModel(f"{what}: a product with non-scalar attributes {skip_tp.irreps_in2}")
    # l x 0e -> l couples with wigner_3j = identity / sqrt(2l+1): that factor makes it a linear map
    dims = torch.cat([torch.full((mul,), 1.0 / math.sqrt(ir.dim), dtype=torch.float64) for mul, ir in skip_tp.irreps_out])
    t = t * dims
    if t.shape[1] != len(layer.maps):
        raise UnsupportedModel(f"{what}: a product with {t.shape[1]} attributes for {len(layer.maps)} elements")
    for e, per_element in enumerate(layer.maps):
        set_linear(per_element, t[:, e, :], range(t.shape[0]), range(t.shape[2]), what)


def _set_contraction(layer, source, where: str) -> None:
    """Each output irrep's U-matrix weights of MACE's SymmetricContraction in eqdsl's symmetric basis."""
    source = getattr(source, "symmetric_contractions", source)
    if len(source.contractions) != len(layer.irreps_out):
        raise UnsupportedModel(f"{where}: {len(source.contractions)} output irreps where eqdsl's has {len(layer.irreps_out)}")
    for i, contraction in enumerate(source.contractions):
        nu = contraction.correlation
        weights = {nu: contraction.weights_max}
        for j, w in enumerate(contraction.weights):
            weights[nu - 1 - j] = w
        for order, w in weights.items():
            u = contraction.U_tensors(order).detach().cpu()
            rtol = max(1e-10, 1e3 * torch.finfo(u.dtype).eps)  # U is exact to the source dtype's rounding
            u = u.to(torch.float64)
            if u.dim() == order + 1:  # an l = 0 output: no M axis
                u = u.unsqueeze(0)
            w = w.detach().cpu().to(torch.float64)  # [elements, k, channels]
            # [elements, channels, M, d, ..., d] -> the M axis last, as set_symmetric_order takes it
            coeffs = torch.einsum("m...k,ekc->ecm...", u, w)
            coeffs = coeffs.permute(0, 1, *range(3, 3 + order), 2)
            set_symmetric_order(layer, i, order, coeffs, f"{where} product basis, output {layer.irreps_out[i]}", rtol)
