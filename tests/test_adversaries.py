"""The math of each adversary and training method, on tiny random models and tensors."""

from __future__ import annotations

import pytest
import torch
from conftest import ARCHITECTURES, tiny_augmenter, tiny_batch, tiny_model

from advembed.adapter import EmbeddingAdapter
from advembed.adversaries import FGM, FGSM, PGD, gradient_at
from advembed.errors import AdvembedError
from advembed.losses import symmetric_kl
from advembed.methods import (
    METHODS,
    SMART,
    YOPO,
    FGMTraining,
    FreeAT,
    FreeLB,
    build_training_method,
)
from advembed.perturbation import direction, l2_norm, project, random_init


def _setup(arch="bert", seed=0, **batch_kwargs):
    model = tiny_model(arch, seed=seed)
    model.eval()  # no dropout: passes are deterministic
    inputs = tiny_batch(**batch_kwargs)
    adapter = EmbeddingAdapter(model)
    with torch.no_grad():
        embeds = adapter.embed(inputs)
    mask = adapter.mask(inputs, embeds)

    def loss_at(delta):
        return adapter.forward(inputs, delta).loss

    return model, inputs, adapter, embeds, mask, loss_at


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


# ------------------------------------------------------------------ perturbation primitives


def test_direction_and_projection_on_hand_computed_tensors():
    grad = torch.tensor([[[3.0, 0.0], [0.0, 4.0], [9.0, 9.0]]])  # third token is padding
    mask = torch.tensor([[[1.0], [1.0], [0.0]]])
    unit = direction(grad, mask, "l2")
    assert torch.allclose(unit, torch.tensor([[[0.6, 0.0], [0.0, 0.8], [0.0, 0.0]]]))
    per_token = direction(grad, mask, "l2", "token")
    assert torch.allclose(per_token, torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]))
    signs = direction(torch.tensor([[[-2.0, 0.5], [1.0, -1.0], [3.0, 3.0]]]), mask, "linf")
    assert torch.equal(signs, torch.tensor([[[-1.0, 1.0], [1.0, -1.0], [0.0, 0.0]]]))
    # ‖δ‖ = 10 projected onto ε = 2 → scaled by 0.2; inside the ball it is unchanged.
    delta = torch.tensor([[[6.0, 0.0], [0.0, 8.0], [0.0, 0.0]]])
    assert torch.allclose(project(delta, mask, 2.0), delta * 0.2)
    assert torch.allclose(project(delta, mask, 20.0), delta)
    assert torch.allclose(project(delta, mask, 0.0), delta)  # 0 = unbounded
    assert torch.equal(project(delta, mask, 1.5, "linf")[0, 1], torch.tensor([0.0, 1.5]))


def test_random_init_is_freelb_scaled_and_zero_on_padding():
    like = torch.zeros(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float).unsqueeze(-1)
    torch.manual_seed(0)
    delta = random_init(like, mask, 0.6, "l2")
    assert torch.all(delta[1, 2:] == 0)
    # U(-1,1) scaled by γ/sqrt(len·hidden): every entry is bounded by that scale.
    assert delta[0].abs().max() <= 0.6 / (5 * 4) ** 0.5 + 1e-7
    assert delta[1].abs().max() <= 0.6 / (2 * 4) ** 0.5 + 1e-7
    assert delta[1, :2].abs().max() > 0.6 / (5 * 4) ** 0.5  # the short example has larger entries


# ------------------------------------------------------------------ adversaries


def test_fgm_has_norm_epsilon_per_example_and_zero_on_padding():
    _, inputs, _, embeds, mask, loss_at = _setup(batch=5, length=11)
    delta = FGM(epsilon=0.37).find(loss_at, embeds, mask)
    norms = l2_norm(delta, mask).flatten()
    assert torch.allclose(norms, torch.full_like(norms, 0.37), atol=1e-5)
    padding = inputs["attention_mask"] == 0
    assert padding.any()
    assert torch.all(delta[padding] == 0)
    grad = gradient_at(loss_at, torch.zeros_like(embeds))
    expected = 0.37 * (grad * mask) / l2_norm(grad, mask)
    assert torch.allclose(delta, expected, atol=1e-6)


def test_fgsm_is_epsilon_times_sign_of_gradient():
    _, inputs, _, embeds, mask, loss_at = _setup()
    delta = FGSM(epsilon=0.01).find(loss_at, embeds, mask)
    grad = gradient_at(loss_at, torch.zeros_like(embeds))
    assert torch.equal(delta, 0.01 * torch.sign(grad) * mask)
    assert loss_at(delta) > loss_at(torch.zeros_like(delta))


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_pgd_stays_in_the_ball_after_every_step_and_raises_the_loss(norm):
    _, _, _, embeds, mask, loss_at = _setup(batch=3)
    epsilon, alpha = (0.5, 0.3) if norm == "l2" else (0.02, 0.015)
    losses = [loss_at(torch.zeros_like(embeds)).item()]
    for steps in range(1, 5):
        delta = PGD(epsilon=epsilon, alpha=alpha, steps=steps, norm=norm).find(
            loss_at, embeds, mask
        )
        size = l2_norm(delta, mask).max() if norm == "l2" else delta.abs().max()
        assert size <= epsilon + 1e-5
        losses.append(loss_at(delta).item())
    assert losses[-1] > losses[0]
    # More steps than needed to reach the boundary: the projection is active.
    long = PGD(epsilon=epsilon, alpha=alpha, steps=4, norm=norm).find(loss_at, embeds, mask)
    size = l2_norm(long, mask).max() if norm == "l2" else long.abs().max()
    assert size == pytest.approx(epsilon, rel=1e-4)


def test_pgd_reuses_a_given_first_gradient():
    _, _, _, embeds, mask, loss_at = _setup()
    grad = gradient_at(loss_at, torch.zeros_like(embeds))
    a = PGD(epsilon=0.5, alpha=0.2, steps=2).find(loss_at, embeds, mask)
    b = PGD(epsilon=0.5, alpha=0.2, steps=2).find(loss_at, embeds, mask, first_grad=grad)
    assert torch.allclose(a, b, atol=1e-6)


# ------------------------------------------------------------------ training methods


def test_fgm_training_gradient_is_clean_plus_adversarial():
    model, inputs, adapter, embeds, mask, loss_at = _setup()
    method = FGMTraining(model, epsilon=0.2)
    method.step(model, inputs)
    got = _grads(model)
    model.zero_grad()
    delta = FGM(epsilon=0.2).find(loss_at, embeds, mask)
    (model(**inputs).loss + adapter.forward(inputs, delta).loss).backward()
    want = _grads(model)
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6), name


def test_freelb_accumulated_gradient_is_mean_of_per_step_gradients():
    model, inputs, adapter, embeds, mask, _ = _setup(batch=3)
    steps, alpha, init = 3, 0.2, 0.5
    torch.manual_seed(123)
    FreeLB(model, steps=steps, alpha=alpha, init_mag=init, epsilon=0.0).step(model, inputs)
    accumulated = _grads(model)

    # Replay the same δ sequence by hand, taking each step's gradient separately.
    torch.manual_seed(123)
    delta = random_init(embeds, mask, init, "l2")
    per_step = []
    for _ in range(steps):
        model.zero_grad()
        delta = delta.detach().requires_grad_(True)
        adapter.forward(inputs, delta).loss.backward()
        per_step.append(_grads(model))
        delta = delta.detach() + alpha * direction(delta.grad, mask, "l2")
    for name, value in accumulated.items():
        mean = sum(g[name] for g in per_step) / steps
        assert torch.allclose(value, mean, atol=1e-6), name
    # The K steps really differ (the perturbation moved between them).
    name = "classifier.weight"
    assert not torch.allclose(per_step[0][name], per_step[-1][name])


def test_freelb_warmup_steps_are_plain():
    model, inputs, *_ = _setup()
    method = FreeLB(model, steps=3, warmup_steps=1)
    method.step(model, inputs)
    warm = _grads(model)
    model.zero_grad()
    model(**inputs).loss.backward()
    for name, value in _grads(model).items():
        assert torch.allclose(warm[name], value, atol=1e-6)


def test_freeat_carries_delta_across_replays_and_steps_optimizer_each_replay():
    model, inputs, *_ = _setup()
    method = FreeAT(model, replays=3, epsilon=0.01)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    steps = 0
    for _ in range(method.replays):
        seen.append(None if method.delta is None else method.delta.clone())
        method.step(model, inputs)
        optimizer.step()
        optimizer.zero_grad()
        steps += 1
    assert steps == 3
    assert seen[0] is None
    assert seen[1].abs().sum() > 0 and seen[2].abs().sum() > 0
    assert not torch.equal(seen[1], seen[2])  # accumulated across replays...
    assert seen[2].abs().max() <= 0.01 + 1e-7  # ...within the L∞ ball
    # A new minibatch restarts δ at zero.
    method.step(model, tiny_batch(seed=5))
    other = tiny_batch(seed=5)
    assert method.delta.shape == FreeAT(model).adapter.embed(other).shape


def test_freeat_replays_in_trainer_loader():
    from advembed.training.replay import ReplayLoader

    loader = ReplayLoader([1, 2], replays=3)
    assert list(loader) == [1, 1, 1, 2, 2, 2]
    assert len(loader) == 6


def test_yopo_inner_updates_never_run_the_encoder_layers():
    model, inputs, *_ = _setup()
    layer_calls = []
    for layer in model.bert.encoder.layer:
        layer.register_forward_hook(lambda *a: layer_calls.append(1))
    block_calls = []
    model.bert.embeddings.register_forward_hook(lambda *a: block_calls.append(1))
    method = YOPO(model, outer_steps=2, inner_steps=3, alpha=0.05, epsilon=0.5)
    method.step(model, inputs)
    layers = len(model.bert.encoder.layer)
    assert len(layer_calls) == 2 * layers  # only the m full passes reach the layers
    # The embedding block also runs for the n updates after each full pass but the last.
    assert len(block_calls) == 2 + 1 * 3
    assert all(p.grad is not None for p in model.classifier.parameters())


def test_yopo_inner_update_matches_adjoint_gradient():
    # From δ = 0, the gradient of ⟨p, f₀(x+δ)⟩ with p = ∂L/∂h₀ equals ∂L/∂δ (chain rule), so
    # YOPO's first inner update is an FGM step of size α.
    model, inputs, adapter, embeds, mask, loss_at = _setup()
    yopo = YOPO(model, outer_steps=2, inner_steps=1, alpha=0.1, epsilon=0.0)
    seen: list[torch.Tensor] = []
    yopo._adapter_for = lambda m: _Recorder(yopo.adapter, seen)
    yopo.step(model, inputs)
    grad = gradient_at(loss_at, torch.zeros_like(embeds))
    assert torch.allclose(seen[0], torch.zeros_like(embeds))
    assert torch.allclose(seen[1], 0.1 * direction(grad, mask, "l2"), atol=1e-5)


class _Recorder(EmbeddingAdapter):
    def __init__(self, inner, seen):
        self.model = inner.model
        self._seen = seen

    def forward(self, inputs, delta=None, **kw):
        self._seen.append(delta.detach().clone())
        return super().forward(inputs, delta, **kw)


def test_symmetric_kl_is_symmetric_and_zero_for_identical():
    p = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3]])
    q = torch.tensor([[0.0, 1.0, 0.0], [1.0, -1.0, 0.5]])
    assert symmetric_kl(p, p).item() == pytest.approx(0.0, abs=1e-7)
    assert symmetric_kl(p, q).item() == pytest.approx(symmetric_kl(q, p).item(), rel=1e-6)
    # Hand computation for the first row.
    a, b = torch.softmax(p[0], -1), torch.softmax(q[0], -1)
    row0 = ((a * (a / b).log()).sum() + (b * (b / a).log()).sum()).item()
    a, b = torch.softmax(p[1], -1), torch.softmax(q[1], -1)
    row1 = ((a * (a / b).log()).sum() + (b * (b / a).log()).sum()).item()
    assert symmetric_kl(p, q).item() == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_smart_adds_weighted_smoothness_to_clean_loss():
    model, inputs, *_ = _setup()
    torch.manual_seed(0)
    zero = SMART(model, weight=0.0).step(model, inputs)
    model.zero_grad()
    torch.manual_seed(0)
    weighted = SMART(model, weight=1000.0, noise=1e-2, step_size=0.5).step(model, inputs)
    clean = model(**inputs).loss.detach()
    assert zero.item() == pytest.approx(clean.item(), rel=1e-5)
    assert weighted.item() > clean.item()


# ------------------------------------------------------------------ gradient accumulation


@pytest.mark.parametrize("name", ["fgm", "freelb"])
def test_two_micro_batches_equal_one_double_batch(name):
    options = {"fgm": {"epsilon": 0.2}, "freelb": {"init_mag": 0.0, "alpha": 0.2}}[name]
    model, *_ = _setup()
    full = tiny_batch(batch=8, length=9, seed=3)
    build_training_method(name, model, **options).step(model, full)
    whole = _grads(model)
    model.zero_grad()
    method = build_training_method(name, model, **options)
    for half in (slice(0, 4), slice(4, 8)):
        micro = {k: v[half] for k, v in full.items()}
        method.step(model, micro, lambda loss: (loss / 2).backward())
    for key, value in _grads(model).items():
        assert torch.allclose(value, whole[key], atol=1e-5), key


# ------------------------------------------------------------------ any architecture


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("pair", [False, True])
def test_every_method_trains_every_architecture(arch, pair):
    inputs = tiny_batch(pair=pair)
    if arch in ("distilbert", "roberta"):
        inputs.pop("token_type_ids")  # their tokenizers produce none
    for name in [name for name in METHODS if name != "none"]:  # every registered method
        model = tiny_model(arch, dropout=0.1)
        model.train()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        extra = {"augment": tiny_augmenter(model)} if name == "vda" else {}
        method = build_training_method(name, model, **extra)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        loss = method.step(model, inputs)
        optimizer.step()
        assert torch.isfinite(loss), (arch, name)
        changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p)]
        assert any("classifier" in n or "pooler" in n or "score" in n for n in changed), name
        assert any("embed" in n for n in changed), (arch, name)


def test_model_without_input_embeddings_is_a_clear_error():
    class NoEmbeddings(torch.nn.Module):
        def get_input_embeddings(self):
            return None

    with pytest.raises(AdvembedError, match="has no input embeddings"):
        build_training_method("fgm", NoEmbeddings())


def test_unknown_method_and_inapplicable_option_are_clear_errors():
    model = tiny_model()
    with pytest.raises(AdvembedError, match="unknown method 'fgn'"):
        build_training_method("fgn", model)
    with pytest.raises(AdvembedError, match="--adv-replays does not apply to method 'fgm'"):
        build_training_method("fgm", model, replays=3)
    with pytest.raises(AdvembedError, match="--adv-steps must be >= 1"):
        build_training_method("pgd", model, steps=0)


def test_pass_counts():
    model = tiny_model()
    counts = {name: build_training_method(name, model).passes for name in
              ("none", "fgm", "pgd", "freelb", "freeat", "yopo", "smart")}
    assert counts == {"none": 1, "fgm": 2, "pgd": 4, "freelb": 3, "freeat": 1, "yopo": 2,
                      "smart": 3}


def test_shipped_defaults_are_the_searched_ones():
    import json
    from pathlib import Path

    from advembed.methods import method_settings

    searched = json.loads((Path(__file__).parents[1] / "docs" / "defaults.json").read_text())
    for method, options in searched.items():
        settings = method_settings(method).as_dict()
        for key, value in options.items():
            assert settings[key] == pytest.approx(value), (method, key)
