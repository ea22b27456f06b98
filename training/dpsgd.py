"""DP-SGD through Opacus (the ``dpsgd`` extra), as the peer defense of the poisoning evaluation.

Same model, epochs, batch size and learning rate as the other defenses; Poisson-sampled batches
of expected size B, per-example gradients clipped to norm C, Gaussian noise of std sigma*C.
Its epsilon is Opacus's own accountant (RDP) under add/remove-one: a peer's number, labelled as
such, not dpaccount's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import ImageData
from .models import build_model
from .train import evaluate
from dpaccount.errors import InputError

__all__ = ["train_dpsgd"]


def train_dpsgd(grid: dict, defense: dict, data: ImageData, seed: int):
    """Train with DP-SGD; return (clean test accuracy, model, privacy dict)."""
    try:
        from opacus import PrivacyEngine
    except ImportError:
        raise InputError("the dpsgd defense needs Opacus: pip install 'dpaccount[dpsgd]'") \
            from None
    import warnings

    torch.manual_seed(seed)
    model = build_model(grid["model"], data.shape, data.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=grid["lr"])
    ds = torch.utils.data.TensorDataset(data.x_train, data.y_train)
    g = torch.Generator()
    g.manual_seed(seed + 1)
    loader = torch.utils.data.DataLoader(ds, batch_size=grid["batch_size"], shuffle=True,
                                         generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns about secure RNG; seeded runs are wanted
        engine = PrivacyEngine(accountant="rdp")
        model, opt, loader = engine.make_private(
            module=model, optimizer=opt, data_loader=loader,
            noise_multiplier=float(defense["noise_multiplier"]),
            max_grad_norm=float(defense["clip"]), noise_generator=g)
        for _ in range(grid["epochs"]):
            for xb, yb in loader:
                if xb.shape[0] == 0:
                    continue
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        eps = float(engine.get_epsilon(grid["delta"]))
    net = model._module if hasattr(model, "_module") else model
    acc = evaluate(net, data.x_test, data.y_test)
    privacy = {"epsilon": eps, "delta": grid["delta"], "method": "opacus",
               "bound": "upper", "relation": "add_remove", "sampler": "poisson (DP-SGD)",
               "note": "Opacus RDP accountant for DP-SGD (a peer's number, not dpaccount's)",
               "mechanism": None}
    return acc, net, privacy
