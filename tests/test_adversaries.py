"""The math of each adversary and training method, on tiny random models and tensors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from conftest import ARCHITECTURES, tiny_augmenter, tiny_batch, tiny_model, tiny_synonyms

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
    method_settings,
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


def test_half_precision_embeddings_get_the_same_step_as_float32():
    """A model cast with ``.half()``: 100 tokens × 768 (L·d = 76,800 > fp16's 65,504) and
    gradients of 1e-4 (their squares, 1e-8, underflow in fp16).  The L2 direction still has
    norm 1 per example and the random start γ/√(L·d)-sized entries.  Catches: norms summed in
    the embedding's dtype (direction inf or NaN, random start exactly 0)."""
    mask = torch.ones(2, 100, 1, dtype=torch.half)
    grad = torch.full((2, 100, 768), 1e-4, dtype=torch.half)
    unit = direction(grad, mask, "l2")
    assert unit.dtype == torch.half
    assert torch.allclose(l2_norm(unit.float(), mask.float()).flatten(), torch.ones(2),
                          atol=1e-2)
    start = random_init(torch.zeros(2, 100, 768, dtype=torch.half), mask, 1.0, "l2",
                        generator=torch.Generator().manual_seed(0))
    bound = 1.0 / (100 * 768) ** 0.5
    assert 0.9 * bound < start.float().abs().max() <= bound * 1.01


def test_random_start_is_uniform_between_minus_and_plus_its_bound():
    """δ₀ is U(-γ, γ) elementwise (L∞), and U(-1, 1)·γ/sqrt(len·hidden) (L2): both signs, mean
    0, the whole interval and never beyond it.  Catches: U(0, 1) noise; an L∞ start of 2γ."""
    like = torch.zeros(40, 30, 10)
    lengths = torch.tensor([30, 12] * 20)
    mask = (torch.arange(30)[None, :] < lengths[:, None]).float().unsqueeze(-1)
    real = mask.expand_as(like) > 0
    generator = torch.Generator().manual_seed(0)
    linf = random_init(like, mask, 0.3, "linf", generator=generator)
    scale = 0.6 / (lengths.float() * 10).sqrt()[:, None, None].expand_as(like)
    l2 = random_init(like, mask, 0.6, "l2", generator=generator)
    for name, unit in (("linf", linf[real] / 0.3), ("l2", l2[real] / scale[real])):
        assert unit.abs().max() <= 1 + 1e-6, name  # never beyond the bound...
        assert unit.min() < -0.99 and unit.max() > 0.99, name  # ...and up to it on both sides
        assert abs(float(unit.mean())) < 0.01, name  # centred on 0 (U(-1, 1) has mean 0)
        assert float((unit < 0).float().mean()) == pytest.approx(0.5, abs=0.02), name
    assert torch.all(linf[~real] == 0) and torch.all(l2[~real] == 0)


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


def test_fgsm_with_a_random_start_is_clipped_back_into_the_ball(monkeypatch):
    """δ = clip(δ₀ + ε·sign(g), -ε, ε): from a start inside the L∞ ball a full step leaves it
    and is clipped back.  Catches: FGSM returning its step unprojected."""
    epsilon = 0.1
    g = torch.tensor([[[2.0, -3.0], [5.0, 1.0], [7.0, 7.0]]])  # third token is padding
    mask = torch.tensor([[[1.0], [1.0], [0.0]]])

    def loss_at(delta):  # gradient g
        return (g * delta).sum()

    # A real random start stays in the ball (a full step from it would not).
    torch.manual_seed(0)
    like = torch.zeros(4, 6, 3)
    delta = FGSM(epsilon=epsilon, random_start=epsilon).find(
        lambda d: (d * torch.arange(72.0).view(4, 6, 3).sin()).sum(), like, torch.ones(4, 6, 1))
    assert delta.abs().max() <= epsilon + 1e-7
    # A fixed start, by hand: (0.06, -0.06) + (0.1, -0.1) → clipped to (0.1, -0.1);
    # (-0.06, 0.02) + (0.1, 0.1) = (0.04, 0.12) → (0.04, 0.1); padding stays 0.
    start = torch.tensor([[[0.06, -0.06], [-0.06, 0.02], [0.05, 0.05]]])
    monkeypatch.setattr("advembed.adversaries.random_init", lambda like, mask, size, norm: start)
    delta = FGSM(epsilon=epsilon, random_start=0.08).find(loss_at, torch.zeros(1, 3, 2), mask)
    assert torch.allclose(delta, torch.tensor([[[0.1, -0.1], [0.04, 0.1], [0.0, 0.0]]]))


def test_fgm_with_a_random_start_is_projected_back_onto_the_ball(monkeypatch):
    """δ = Π_ε(δ₀ + ε·g/‖g‖) per example.  Catches: FGM returning its step unprojected."""
    # A real random start stays in the ball (a full step from it would not).
    torch.manual_seed(0)
    like, ones = torch.zeros(4, 6, 3), torch.ones(4, 6, 1)
    delta = FGM(epsilon=0.5, random_start=0.5).find(
        lambda d: (d * torch.arange(72.0).view(4, 6, 3).sin()).sum(), like, ones)
    assert float(l2_norm(delta, ones).max()) <= 0.5 + 1e-6
    # By hand: g = (4, -3) → ε·g/‖g‖ = (0.4, -0.3); δ₀ = (0.2, 0.3) (‖δ₀‖ < ε); the step
    # (0.6, 0.0) has norm 0.6 > ε = 0.5 and is scaled back to (0.5, 0.0).  Padding stays 0.
    g = torch.tensor([[[4.0, -3.0], [9.0, 9.0]]])
    mask = torch.tensor([[[1.0], [0.0]]])
    start = torch.tensor([[[0.2, 0.3], [0.1, 0.1]]])
    monkeypatch.setattr("advembed.adversaries.random_init", lambda like, mask, size, norm: start)
    delta = FGM(epsilon=0.5, random_start=0.3).find(lambda d: (g * d).sum(),
                                                    torch.zeros(1, 2, 2), mask)
    assert torch.allclose(delta, torch.tensor([[[0.5, 0.0], [0.0, 0.0]]]), atol=1e-6)


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


def test_yopo_refreshes_its_adjoint_at_every_full_pass():
    """YOPO-3-1: each full pass gives a new adjoint p = ∂L/∂h₀ at the current δ, so the inner
    update after pass 2 (at δ₁) steps along ∇L(δ₁) itself (the chain rule at that point), not
    along ⟨p₀, f₀(x + δ)⟩ of pass 1's adjoint.  Catches: the adjoint kept from the first pass
    (every other YOPO test has m = 2, where only one adjoint is ever used)."""
    model, inputs, adapter, embeds, mask, loss_at = _setup()
    yopo = YOPO(model, outer_steps=3, inner_steps=1, alpha=0.5, epsilon=0.0)
    seen: list[torch.Tensor] = []
    yopo._adapter_for = lambda m: _Recorder(yopo.adapter, seen)
    yopo.step(model, inputs)
    assert len(seen) == 3  # the three full passes
    step = 0.5 * direction(gradient_at(loss_at, seen[1]), mask, "l2")
    assert torch.allclose(seen[2], seen[1] + step, atol=1e-6)
    stale = seen[1] + 0.5 * direction(gradient_at(loss_at, seen[0]), mask, "l2")
    assert not torch.allclose(seen[2], stale, atol=1e-4)  # the test can tell them apart


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


# ------------------------------------------------------------------ a linear toy model
#
# Word embeddings in 2-d, an identity embedding block, logits_i = Σ_t m_it·h_it and the loss
# L = Σ_i ⟨w, logits_i⟩ with w = (3, -4): ∇_δ L = w on every real token, so every step is known
# in closed form.  Batch A has one real token in its first example and four in its second:
# Σ_real e = (2, 5), L(0) = 6 - 20 = -14.  An L2 unit step per example is u_t = w/(5·sqrt(n_i))
# (0.6, -0.8) on the one token, (0.3, -0.4) on each of the four; Σ_t u_t = 3·(0.6, -0.8).


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        table = torch.tensor([[0.0, 0.0], [1.0, 2.0], [-1.0, 1.0], [2.0, -1.0]])
        self.word = torch.nn.Embedding.from_pretrained(table, freeze=False)

    def forward(self, inputs_embeds):
        return inputs_embeds


class _LinearToy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = _Block()
        self.w = torch.nn.Parameter(torch.tensor([3.0, -4.0]))

    def get_input_embeddings(self):
        return self.embeddings.word

    def forward(self, inputs_embeds, attention_mask, **kwargs):
        h = self.embeddings(inputs_embeds)
        logits = (h * attention_mask.unsqueeze(-1)).sum(1)
        return SimpleNamespace(loss=(logits * self.w).sum(), logits=logits)


def _toy_batch(ids=((1, 0, 0, 0), (1, 2, 3, 2))):
    ids = torch.tensor(ids)
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def _record_deltas(method):
    """Every δ the method runs a pass on, in order (passes without one are skipped)."""
    seen, original = [], method.adapter.forward

    def forward(inputs, delta=None, **kwargs):
        if delta is not None:
            seen.append(delta.detach().clone())
        return original(inputs, delta, **kwargs)

    method.adapter.forward = forward
    return seen


def test_freeat_delta_steps_up_the_gradient_by_epsilon_each_replay():
    """L∞, ε = 0.1: after the first replay δ = ε·sign(w) = (0.1, -0.1) on real tokens, and the
    second replay's loss is L(0) + 5 tokens·⟨w, δ⟩ = -14 + 3.5.  Catches: δ descending; a
    step of ε/2."""
    model = _LinearToy()
    method = FreeAT(model, replays=2, epsilon=0.1, norm="linf")
    inputs = _toy_batch()
    assert method.step(model, inputs).item() == pytest.approx(-14.0)
    real = inputs["attention_mask"].unsqueeze(-1).float()
    assert torch.allclose(method.delta, torch.tensor([0.1, -0.1]) * real)
    assert method.step(model, inputs).item() == pytest.approx(-10.5)
    assert torch.allclose(method.delta, torch.tensor([0.1, -0.1]) * real)  # clipped at ε


def test_freeat_restarts_delta_at_zero_on_a_new_minibatch_of_the_same_shape():
    """After m = 2 replays of batch A, batch B (same shape) is run at δ = 0: its loss is its
    clean Σ_real e = (3, 2) → 9 - 8 = 1 (with A's δ carried over it would be 1 + 3.5).
    Catches: δ carried into the next minibatch."""
    model = _LinearToy()
    method = FreeAT(model, replays=2, epsilon=0.1, norm="linf")
    for _ in range(2):
        method.step(model, _toy_batch())
    other = _toy_batch(((3, 0, 0, 0), (2, 2, 1, 3)))
    assert method.step(model, other).item() == pytest.approx(1.0)


def test_freeat_refuses_another_minibatch_of_the_same_shape_before_its_replays_are_done():
    """δ of batch A must not be carried into batch B (same shape, other tokens) in the middle
    of A's replays: an own loop that forgets to replay gets one line, not a δ whose padding
    rows are B's real tokens.  Catches: comparing shapes only."""
    model = _LinearToy()
    method = FreeAT(model, replays=2, epsilon=0.1, norm="linf")
    method.step(model, _toy_batch())
    with pytest.raises(AdvembedError, match="same minibatch"):
        method.step(model, _toy_batch(((3, 0, 0, 0), (2, 2, 1, 3))))


@pytest.mark.parametrize(("warmup", "plain"), [(0, 0), (1, 3), (2, 3), (3, 3), (4, 6)])
def test_freeat_warmup_counts_optimiser_steps_rounded_up_to_whole_minibatches(warmup, plain,
                                                                              monkeypatch):
    """m = 3 replays, one optimiser step each: --adv-warmup-steps W gives ⌈W/3⌉·3 plain steps
    (not W·3: warm-ups count optimiser steps, as every other method's do), and the first
    adversarial step starts a minibatch (δ = 0).  Catches: W·m; W not rounded (a batch half
    plain, half adversarial)."""
    import advembed.methods.base as base

    monkeypatch.setattr(base, "plain_step", lambda *args: torch.tensor(0.0))  # the toy has no
    model = _LinearToy()  # plain forward
    method = FreeAT(model, replays=3, epsilon=0.1, norm="linf", warmup_steps=warmup)
    seen = _record_deltas(method)
    for _ in range(9):
        method.step(model, _toy_batch())
    assert len(seen) == 9 - plain
    assert torch.count_nonzero(seen[0]) == 0


def test_yopo_step_is_the_mean_of_its_m_passes_with_inner_updates_in_the_ball():
    """YOPO-2-3, α = 0.3, ε = 0.5: pass 1 at δ = 0; three inner steps along the adjoint w reach
    0.3u, 0.6u → 0.5u, 0.8u → 0.5u; pass 2 at 0.5u, where L = -14 + 0.5·5·3 = -6.5.  The step
    is (L₁ + L₂)/2 = -10.25, and ∇_w = (Σe + (Σe + Σδ))/2 = ((2, 5) + (2.9, 3.8))/2.
    Catches: a pass's 1/m share dropped (first passes or the last); no projection in the
    inner updates (0.9u: L₂ = -0.5)."""
    model = _LinearToy()
    method = YOPO(model, outer_steps=2, inner_steps=3, alpha=0.3, epsilon=0.5, norm="l2",
                  init_mag=0.0)
    seen = _record_deltas(method)
    total = method.step(model, _toy_batch())
    assert torch.allclose(seen[-1], torch.tensor([[[0.3, -0.4]] + [[0.0, 0.0]] * 3,
                                                  [[0.15, -0.2]] * 4]), atol=1e-6)
    assert total.item() == pytest.approx(-10.25)
    assert torch.allclose(model.w.grad, torch.tensor([2.45, 4.4]), atol=1e-6)


def test_freelb_clean_pass_adds_the_clean_loss_gradient():
    """FreeLB K = 2, α = 0.3, unbounded, with the clean pass: ∇_w = Σe (clean) + Σe/2 (δ₀ = 0)
    + (Σe + 0.3·Σu)/2 = 2·(2, 5) + (0.27, -0.36); the loss is -14 - 7 - 9.5/2.
    Catches: the clean loss reported but not back-propagated."""
    model = _LinearToy()
    method = FreeLB(model, steps=2, alpha=0.3, epsilon=0.0, init_mag=0.0, clean_pass=True)
    total = method.step(model, _toy_batch())
    assert total.item() == pytest.approx(-25.75)
    assert torch.allclose(model.w.grad, torch.tensor([4.27, 9.64]), atol=1e-6)


@pytest.mark.parametrize("same", [True, False])
def test_freelb_same_dropout_gives_its_k_passes_one_mask(same):
    """With δ held at zero (γ = 0, α = 0) the K = 3 passes read the same input: with
    ``same_dropout`` their losses are equal (one mask, the paper's §3.3); with fresh masks
    (default) they differ."""
    model = tiny_model(seed=2, dropout=0.3).train()
    method = FreeLB(model, steps=3, init_mag=0.0, alpha=0.0, same_dropout=same)
    losses, original = [], method.adapter.forward

    def forward(inputs, delta=None, **kwargs):
        out = original(inputs, delta, **kwargs)
        losses.append(out.loss.item())
        return out

    method.adapter.forward = forward
    torch.manual_seed(0)
    method.step(model, tiny_batch(seed=1))
    assert len(losses) == 3
    assert (losses[0] == losses[1] == losses[2]) == same


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_smart_with_epsilon_projects_each_token_onto_the_ball(norm):
    """SMART's ascent step η = 1 takes every token far outside ε = 0.05.  L2: the projection
    is per token, so every real token's δ has norm exactly ε — also the four tokens of the
    second example (per example they would share ε: about ε/2 each).  L∞ (the default): every
    coordinate is clamped to [−ε, ε], and each token's largest one sits at ε.
    Catches: the projection per example, or in the wrong norm."""
    model = _LinearToy()
    method = SMART(model, noise=0.01, step_size=1.0, epsilon=0.05, norm=norm)
    seen = _record_deltas(method)
    inputs = _toy_batch()
    torch.manual_seed(0)
    method.step(model, inputs)
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    if norm == "l2":
        sizes = l2_norm(seen[-1], mask, "token").squeeze(-1)
    else:
        sizes = seen[-1].abs().amax(-1)
    assert torch.allclose(sizes, 0.05 * mask.squeeze(-1), atol=1e-6)


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
        if name == "vaa":  # model B, reading frozen A
            from advembed.vaa.model import VulnerabilityAwareModel

            model = VulnerabilityAwareModel.from_model_a(model)
        model.train()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        extra = {"augment": tiny_augmenter(model)} if name == "vda" else {}
        if name == "ascc":
            extra = {"synonyms": tiny_synonyms(model)}
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


@pytest.mark.parametrize("name", ["fgsm", "fgm", "pgd"])
@pytest.mark.parametrize("clean_weight", [1.0, 0.0])
@pytest.mark.parametrize("random_start", [0.0, 0.1])
@pytest.mark.parametrize("with_carl", [False, True])
def test_pass_count_is_the_encoder_passes_a_step_makes(name, clean_weight, random_start,
                                                       with_carl):
    """``passes`` (the step-cost benchmark's unit) against the encoder's forward calls: the
    clean pass serves the clean loss and the objective's R at once, and its gradient is the
    first ascent step only without a random start."""
    from advembed.objectives.carl import CARL

    model = tiny_model()
    objective = CARL([0, 1] * 8, dim=model.config.hidden_size, warmup=0) if with_carl else None
    method = build_training_method(name, model, objective=objective, clean_weight=clean_weight,
                                   random_start=random_start)
    calls = []
    hook = model.base_model.encoder.register_forward_hook(lambda *_: calls.append(1))
    batch = tiny_batch()
    batch["example_index"] = torch.arange(batch["input_ids"].shape[0])
    method.step(model, batch)
    hook.remove()
    assert method.passes == len(calls)


def test_shipped_defaults_are_the_searched_ones():
    import json
    from pathlib import Path

    from advembed.methods import method_settings

    searched = json.loads((Path(__file__).parents[1] / "docs" / "defaults.json").read_text())
    for method, options in searched.items():
        settings = method_settings(method).as_dict()
        for key, value in options.items():
            assert settings[key] == pytest.approx(value), (method, key)


@pytest.mark.parametrize("name", ["none", "fgsm", "fgm", "pgd", "freeat", "yopo", "freelb",
                                  "smart"])
def test_a_batch_without_labels_is_a_one_line_error_naming_labels(name):
    model = tiny_model()
    method = build_training_method(name, model)
    batch = {k: v for k, v in tiny_batch().items() if k != "labels"}
    with pytest.raises(AdvembedError, match=f"method {name} trains on the model's own loss: the "
                                            "batch needs 'labels'"):
        method.step(model, batch)


def test_inner_gradients_are_taken_of_the_loss_times_the_mixed_precision_scale():
    """Under fp16 the parameter backward is scaled by GradScaler; a method's own
    ``autograd.grad`` of the loss w.r.t. δ is not, and loses small entries: on the tiny model
    its sign matches float32's on about 97 % of them unscaled, on all of them scaled by 2¹⁶.
    So ``inner_loss_scale`` (set by AdvTrainer from the scaler) multiplies the loss whose δ
    gradient a method takes; the normalised step does not change with it."""
    model = tiny_model("bert")
    model.eval()
    batch = tiny_batch(batch=8, seed=2)
    batch["labels"] = torch.arange(8) % 2
    adapter = EmbeddingAdapter(model)
    zeros = torch.zeros_like(adapter.embed(batch).detach())
    real = batch["attention_mask"].bool()
    exact = gradient_at(lambda d: adapter.forward(batch, d).loss, zeros)[real].sign()
    agree = {}
    for scale in (1.0, 2.0 ** 16):
        with torch.autocast("cpu", dtype=torch.float16):
            grad = gradient_at(lambda d, s=scale: adapter.forward(batch, d).loss * s, zeros)
        agree[scale] = float((grad[real].sign() == exact).float().mean())
    assert agree[2.0 ** 16] > 0.999 and agree[1.0] < 0.99

    method = build_training_method("pgd", model, random_start=0.01, steps=2)
    seen, find = [], method.adversary.find

    def recording(loss_at, embeds, mask, **kwargs):
        seen.append(float(loss_at(torch.zeros_like(embeds)).detach()))
        return find(loss_at, embeds, mask, **kwargs)

    method.adversary.find = recording
    for scale in (1.0, 1024.0):
        method.inner_loss_scale = scale
        torch.manual_seed(5)
        model.zero_grad()
        method.step(model, dict(batch))
    assert seen[1] == pytest.approx(1024.0 * seen[0], rel=1e-5)


def test_adv_trainer_hands_the_methods_the_grad_scalers_scale(tmp_path):
    """AdvTrainer sets ``inner_loss_scale`` from accelerate's GradScaler before each step (1
    without one), so the inner gradients are scaled as the parameter backward is."""
    from transformers import TrainingArguments

    from advembed.training.trainer import AdvTrainer

    class Scaler:  # what accelerate's backward and AdvTrainer ask of torch's GradScaler
        def get_scale(self):
            return 512.0

        def is_enabled(self):
            return True

        def scale(self, loss):
            return loss * 512.0

    model = tiny_model()
    method = build_training_method("pgd", model, random_start=0.01)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = AdvTrainer(model=model, args=args, method=method)
    batch = tiny_batch(batch=4, length=8, seed=1)
    batch["labels"] = torch.tensor([0, 1, 0, 1])
    trainer.create_optimizer_and_scheduler(num_training_steps=2)
    trainer.current_gradient_accumulation_steps = 1  # as train() sets it
    trainer.training_step(model, dict(batch))
    assert method.inner_loss_scale == 1.0
    trainer.accelerator.scaler = Scaler()
    trainer.training_step(model, dict(batch))
    assert method.inner_loss_scale == 512.0


def test_the_fp16_scalers_state_is_checkpointed_without_pickle(tmp_path):
    """The stock Trainer writes ``scaler.pt`` with torch.save; AdvTrainer writes the scale and
    growth counter as JSON and reads them back on resume."""
    from transformers import TrainingArguments

    from advembed.training.trainer import AdvTrainer

    model = tiny_model()
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = AdvTrainer(model=model, args=args, method=build_training_method("fgm", model))
    trainer.accelerator.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0,
                                                      growth_interval=7)
    trainer._save_scaler(str(tmp_path))
    assert (tmp_path / "scaler.json").is_file() and not (tmp_path / "scaler.pt").exists()
    trainer.accelerator.scaler = torch.amp.GradScaler("cpu")
    trainer._load_scaler(str(tmp_path))
    state = trainer.accelerator.scaler.state_dict()
    assert (state["scale"], state["growth_interval"]) == (1024.0, 7)


def test_yopo_steps_with_a_frozen_embedding_block():
    """Linear probing or a frozen embedding layer: no weight of the first block wants a
    gradient, yet YOPO's adjoint p there must exist (δ wants one)."""
    model = tiny_model("bert", seed=1)
    model.bert.embeddings.requires_grad_(False)
    loss = build_training_method("yopo", model).step(model, tiny_batch())
    assert torch.isfinite(loss)
    assert model.bert.embeddings.word_embeddings.weight.grad is None


def test_adversaries_and_methods_refuse_what_would_silently_be_another_attack():
    with pytest.raises(AdvembedError, match="norm 'l2' does not apply"):
        FGSM(epsilon=0.5, norm="l2")
    for adversary in (FGSM, FGM):
        with pytest.raises(AdvembedError, match="epsilon must be > 0, got -0.5"):
            adversary(epsilon=-0.5)
    model = tiny_model("bert", seed=1)
    with pytest.raises(AdvembedError, match="method 'freelb' takes FreeLBSettings, not "
                                            "YOPOSettings"):
        build_training_method("freelb", model, settings=method_settings("yopo"))
    for name in ("pgd", "yopo"):
        with pytest.raises(AdvembedError, match="alpha"):
            method_settings(name, {"alpha": 0.0})
    assert method_settings("freelb", {"alpha": 0.0}).alpha == 0.0  # random noise: allowed
