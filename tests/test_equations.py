"""Every equation pinned by a hand computation that a wrong formula fails.

Each test names, in its docstring, the single-line mutation of ``src/`` it catches
(``benchmarks/mutation_check.py`` applies them and fails if any survives).  Values are chosen
so that a wrong formula gives a different number: M ≠ 0.5, τ ≠ 1, vectors that are not unit
length, gradients whose coordinates differ in size, batches with padding.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch
from conftest import SMALL, SPECIAL, WORDS, tiny_batch, tiny_model

from advembed.adapter import EmbeddingAdapter
from advembed.adversaries import PGD
from advembed.losses import symmetric_kl
from advembed.methods import SMART, FreeLB, build_training_method
from advembed.objectives import (
    ATCL,
    CARL,
    RAR,
    MemoryBank,
    ObjectiveContext,
    atcl_contrastive_loss,
)
from advembed.perturbation import l2_norm, random_init


def record_deltas(method) -> list[torch.Tensor | None]:
    """Every δ the method passes to a forward pass, in order (``None``: no perturbation)."""
    seen: list[torch.Tensor | None] = []
    original = method.adapter.forward

    def forward(inputs, delta=None, **kwargs):
        seen.append(None if delta is None else delta.detach().clone())
        return original(inputs, delta, **kwargs)

    method.adapter.forward = forward
    return seen


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


class WordTokenizer:
    """The tiny models' vocabulary as ATCL reads it (whole words; no sub-word pieces)."""

    tokens = SPECIAL + WORDS + [f"x{i}" for i in range(SMALL["vocab_size"] - len(SPECIAL)
                                                        - len(WORDS))]
    all_special_ids = list(range(len(SPECIAL)))

    def __len__(self):
        return SMALL["vocab_size"]

    def convert_ids_to_tokens(self, ids):
        return [self.tokens[i] for i in ids]


def _batch(batch: int = 6) -> dict[str, torch.Tensor]:
    inputs = tiny_batch(batch=batch, length=9, seed=1)
    inputs["labels"] = torch.tensor([i % 2 for i in range(batch)])
    inputs["example_index"] = torch.arange(batch)
    return inputs


# ----------------------------------------------------- the objective's weight (paper 001 eq. 6–7)


def _objective(name: str, model, weight: float):
    if name == "rar":
        return RAR(model, special_ids={0, 2, 3}, weight=weight)
    if name == "carl":
        carl = CARL([i % 2 for i in range(6)], dim=16, warmup=0, num_negatives=3, tau=0.3,
                    momentum=0.2, weight=weight, seed=5)
        generator = torch.Generator().manual_seed(9)
        rows = torch.randn(6, 16, generator=generator)
        carl.orig.update(torch.arange(6), rows)
        carl.adv.update(torch.arange(6), rows.roll(1, dims=0))
        return carl
    return ATCL(WordTokenizer(), alpha=0.4, beta=weight, tau=0.2, num_negatives=3, seed=7)


def _weightless(objective):
    """The same objective in the same state, with its own term weighted 0."""
    key = {"carl": "weight", "atcl": "beta"}[objective.name]
    twin = copy.deepcopy(objective)
    twin.settings = dataclasses.replace(twin.settings, **{key: 0.0})
    return twin


def _term_at(name, base, objective_before, inputs, delta):
    """∇ of the objective's own term alone at the final adversarial sample, on a fresh copy."""
    model = copy.deepcopy(base)
    objective = (RAR(model, special_ids={0, 2, 3}, weight=objective_before.settings.weight)
                 if name == "rar" else copy.deepcopy(objective_before))
    adapter = EmbeddingAdapter(model)
    plain = {k: v for k, v in inputs.items() if k != "example_index"}
    if name == "atcl":  # replay the random choice of the perturbed word (same generator state)
        objective.perturbation_mask(plain, adapter.mask(plain, adapter.embed(plain)))
    clean = (adapter.forward(plain, output_hidden_states=True) if objective.needs_clean
             else None)
    adversarial = adapter.forward(plain, delta, output_hidden_states=True)
    context = ObjectiveContext(model=model, inputs=plain, adversarial=adversarial, clean=clean,
                               example_index=inputs["example_index"], step=0)
    objective.loss(context).backward()
    return grads(model)


@pytest.mark.parametrize("method", ["freelb", "yopo"])
@pytest.mark.parametrize("name", ["rar", "carl", "atcl"])
def test_the_objective_term_has_its_full_weight_under_multi_pass_methods(method, name):
    """Paper 001 eq. 6–7: the objective's term enters once per optimiser step with its own
    weight, whatever the adversary.  The step's gradient is the method's gradient (the same
    composition with the term weighted 0) plus ∇ term at the final adversarial sample.

    Catches: the term multiplied by the pass's scale 1/K (FreeLB) or 1/m (YOPO)."""
    torch.manual_seed(0)
    base = tiny_model(seed=3)
    base.eval()
    if name == "rar":
        RAR(base, special_ids={0, 2, 3})  # the reconstructor, initialised once for every copy
    inputs = _batch()
    options = {"freelb": {"steps": 3, "alpha": 0.2, "init_mag": 0.3},
               "yopo": {"outer_steps": 2, "inner_steps": 2, "alpha": 0.1, "epsilon": 0.5,
                        "init_mag": 0.3}}[method]
    weight = 0.7
    runs = {}
    for kind in ("full", "weightless"):
        model = copy.deepcopy(base)
        objective = _objective(name, model, weight)
        if kind == "full":
            before = copy.deepcopy(objective) if name != "rar" else objective
        elif name == "rar":
            objective = RAR(model, special_ids={0, 2, 3}, weight=0.0)
        else:
            objective = _weightless(objective)
        trained = build_training_method(method, model, objective=objective, **options)
        seen = record_deltas(trained)
        torch.manual_seed(42)
        trained.step(model, inputs)
        runs[kind] = (grads(model), [d for d in seen if d is not None])
    (full, deltas), (weightless, same_deltas) = runs["full"], runs["weightless"]
    assert all(torch.equal(a, b) for a, b in zip(deltas, same_deltas, strict=True))
    term = _term_at(name, base, before, inputs, deltas[-1])
    assert any(value.abs().sum() > 1e-6 for value in term.values())  # the term does something
    for key, value in full.items():
        expected = weightless.get(key, torch.zeros_like(value)) + term.get(
            key, torch.zeros_like(value))
        assert torch.allclose(value, expected, atol=1e-6), (method, name, key)


# ---------------------------------------------------------------------------- adversaries


def test_l2_pgd_steps_along_g_over_its_norm_and_projects_after_each_step():
    """δ_{t+1} = Π_ε(δ_t + α·g_t/‖g_t‖) on a loss whose gradient changes direction, computed
    by hand.  Catches: L2 PGD stepping along sign(g); a missing projection."""
    a = torch.tensor([[[3.0, -1.0], [0.5, 2.0]]])
    b = torch.tensor([[[1.0, 2.0], [0.5, 0.0]]])
    mask = torch.ones(1, 2, 1)

    def loss_at(delta):  # gradient a + 2·b·δ
        return (a * delta + b * delta**2).sum()

    epsilon, alpha = 0.6, 0.4
    delta = PGD(epsilon=epsilon, alpha=alpha, steps=2, norm="l2").find(
        loss_at, torch.zeros(1, 2, 2), mask)
    g0 = a
    d1 = alpha * g0 / math.sqrt(float((g0**2).sum()))
    g1 = a + 2 * b * d1
    d2 = d1 + alpha * g1 / math.sqrt(float((g1**2).sum()))
    size = math.sqrt(float((d2**2).sum()))
    assert size > epsilon  # the second step leaves the ball: the projection is exercised
    assert torch.allclose(delta, d2 * epsilon / size, atol=1e-6)


def test_freelb_with_a_radius_stays_in_the_ball_at_every_step():
    """With ε > 0, every δ FreeLB runs the model on is the projection of the ascent step onto
    the ball (replayed by hand).  Catches: FreeLB skipping its projection."""
    model = tiny_model(seed=1)
    model.eval()
    inputs = _batch()
    epsilon, alpha, init = 0.05, 0.5, 0.2
    method = FreeLB(model, steps=4, alpha=alpha, epsilon=epsilon, init_mag=init)
    seen = record_deltas(method)
    torch.manual_seed(3)
    method.step(model, dict(inputs))
    deltas = [d for d in seen if d is not None]
    adapter = EmbeddingAdapter(model)
    plain = {k: v for k, v in inputs.items() if k != "example_index"}
    embeds = adapter.embed(plain).detach()
    mask = adapter.mask(plain, embeds)

    def onto_ball(delta):
        size = l2_norm(delta, mask)
        return delta * torch.where(size > epsilon, epsilon / size, torch.ones_like(size))

    torch.manual_seed(3)
    expected = onto_ball(random_init(embeds, mask, init, "l2"))
    for step, got in enumerate(deltas):
        assert torch.allclose(got, expected, atol=1e-6), step
        assert float(l2_norm(got, mask).max()) <= epsilon + 1e-6
        delta = expected.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(adapter.forward(plain, delta).loss / 4, delta)
        grad = grad * mask
        expected = onto_ball(expected + alpha * grad / l2_norm(grad, mask))
    assert float(l2_norm(deltas[-1], mask).min()) == pytest.approx(epsilon, rel=1e-4)


@pytest.mark.parametrize(("name", "options"), [
    ("freelb", {"init_mag": 0.5}),
    ("yopo", {"init_mag": 0.5, "epsilon": 1.0}),
    ("pgd", {"random_start": 0.3, "epsilon": 1.0}),
    ("fgm", {"random_start": 0.3, "epsilon": 1.0}),
])
def test_random_starts_and_steps_never_touch_padding(name, options):
    """On a batch with padding, every δ a method with a random start runs the model on is 0 at
    padding positions.  Catches: the adapter's padding mask set to all ones (the gradient at
    padding is 0 on the tiny BERT, but a random start is not)."""
    model = tiny_model(seed=2)
    model.eval()
    inputs = _batch()
    padding = inputs["attention_mask"] == 0
    assert padding.any()
    method = build_training_method(name, model, **options)
    seen = record_deltas(method)
    torch.manual_seed(0)
    method.step(model, dict(inputs))
    deltas = [d for d in seen if d is not None]
    assert deltas and any(d[~padding].abs().sum() > 0 for d in deltas)
    for delta in deltas:
        assert torch.all(delta[padding] == 0), name


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_smart_ascends_the_symmetric_kl_and_regularises_both_ways(norm):
    """SMART's δ is σ-noise plus one per-token step *up* the symmetric KL — ``η·g/‖g‖∞`` (its
    Algorithm 1, the default: each token's largest coordinate moves by η, the others in
    proportion) or ``η·g/‖g‖₂`` (``--adv-norm l2``, older runs) — and its loss is
    ``CE + λ·½(sKL(f(x+δ), sg f(x)) + sKL(f(x), sg f(x+δ)))`` — value and gradient replayed by
    hand.  Catches: the ascent step turned into descent; the L∞ step taken as sign(g) or
    normalised over the example; the regulariser made one-sided KL(p‖q) inside the method."""
    model = tiny_model(seed=4)
    model.eval()
    inputs = _batch()
    plain = {k: v for k, v in inputs.items() if k != "example_index"}
    weight, noise, step = 2.0, 0.05, 0.3
    method = SMART(model, weight=weight, noise=noise, step_size=step, norm=norm)
    seen = record_deltas(method)
    torch.manual_seed(0)
    loss = method.step(model, dict(inputs))
    got = grads(model)
    model.zero_grad()

    adapter = EmbeddingAdapter(model)
    embeds = adapter.embed(plain).detach()
    mask = adapter.mask(plain, embeds)
    clean = model(**plain)
    torch.manual_seed(0)
    start = torch.randn_like(embeds) * noise * mask
    d0 = start.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(symmetric_kl(adapter.forward(plain, d0).logits,
                                            clean.logits.detach()), d0)
    g = g * mask
    if norm == "linf":
        per_token = g.abs().max(-1, keepdim=True).values.clamp_min(1e-12)
    else:
        per_token = g.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
    delta = start + step * g / per_token
    moved = (delta - start)[mask.squeeze(-1).bool()]
    if norm == "linf":  # ±η on each token's largest coordinate, less elsewhere (not sign(g))
        assert torch.allclose(moved.abs().max(-1).values, torch.full((len(moved),), step))
        assert (moved.abs() < step - 1e-6).any()
    assert torch.allclose([d for d in seen if d is not None][-1], delta, atol=1e-6)
    before = symmetric_kl(adapter.forward(plain, start).logits, clean.logits).item()
    perturbed = adapter.forward(plain, delta)
    assert symmetric_kl(perturbed.logits, clean.logits).item() > before  # an ascent step

    p = torch.softmax(clean.logits, -1)
    q = torch.softmax(perturbed.logits, -1)
    both_ways = ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)).mean()
    assert loss.item() == pytest.approx((clean.loss + weight * both_ways).item(), rel=1e-5)
    regulariser = 0.5 * (symmetric_kl(perturbed.logits, clean.logits.detach())
                         + symmetric_kl(clean.logits, perturbed.logits.detach()))
    (clean.loss + weight * regulariser).backward()
    for key, value in grads(model).items():
        assert torch.allclose(got[key], value, atol=1e-6), key


def test_a_smart_run_that_records_no_norm_was_trained_with_the_l2_step():
    """Runs before the L∞ default recorded no ``norm``: they read (resume, tables) as l2."""
    from dataclasses import fields

    from advembed.methods.smart import SMARTSettings
    from advembed.settings import META_KEY

    field = next(f for f in fields(SMARTSettings) if f.name == "norm")
    assert field.default == "linf"
    assert field.metadata[META_KEY].recorded({}, "norm", field.default) == "l2"
    assert field.metadata[META_KEY].recorded({"norm": "linf"}, "norm", field.default) == "linf"


# ------------------------------------------------------------------------------- objectives


def test_memory_bank_momentum_is_the_old_rows_weight():
    """Eq. 5, ``B[i] = M·B[i] + (1 − M)·R_i``, with M = 0.2 (at 0.5 M and 1 − M agree).
    Catches: M replaced by 1 − M."""
    bank = MemoryBank(2, 2, momentum=0.2, normalize=False)
    bank.update(torch.tensor([1]), torch.tensor([[2.0, -1.0]]))
    bank.update(torch.tensor([1]), torch.tensor([[0.5, 3.0]]))
    assert torch.allclose(bank.rows[1], torch.tensor([0.2 * 2.0 + 0.8 * 0.5,
                                                      0.2 * -1.0 + 0.8 * 3.0]))


def _unit(values):
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _dot(x, y):
    return sum(a * b for a, b in zip(x, y, strict=True))


def test_carl_loss_end_to_end_with_fixed_banks():
    """CARL as users get it (class defaults but τ, m and M): ``L_D^a`` anchors on R_adv against
    R and the **original** bank's negatives, ``L_D^o`` on R against R_adv and the
    **adversarial** bank's; the denominators hold the negatives only; then eq. 5 updates both
    banks.  Catches: the two banks swapped; the positive added to the denominator by default;
    M replaced by 1 − M in the update."""
    tau, momentum = 0.5, 0.3
    carl = CARL([0, 1], dim=2, warmup=0, num_negatives=2, tau=tau, momentum=momentum)
    orig_row, adv_row = _unit([1.0, -1.0]), _unit([-2.0, 1.0])
    old_orig, old_adv = _unit([0.0, 1.0]), _unit([1.0, 1.0])
    carl.orig.rows[:] = torch.tensor([old_orig, orig_row])
    carl.adv.rows[:] = torch.tensor([old_adv, adv_row])
    carl.orig.filled[:] = True
    carl.adv.filled[:] = True
    clean, adversarial = [3.0, 1.0], [1.0, 2.0]

    def outputs(vector):
        return SimpleNamespace(hidden_states=[torch.tensor([[vector]])])

    context = ObjectiveContext(model=None, inputs={}, adversarial=outputs(adversarial),
                               clean=outputs(clean), example_index=torch.tensor([0]), step=0)
    value = carl.loss(context).item()
    r, r_adv = _unit(clean), _unit(adversarial)
    # Example 0 has label 0: both of its m = 2 negatives are example 1, the only other label.
    l_a = -_dot(r_adv, r) / tau + math.log(2 * math.exp(_dot(r_adv, orig_row) / tau))
    l_o = -_dot(r, r_adv) / tau + math.log(2 * math.exp(_dot(r, adv_row) / tau))
    assert value == pytest.approx(l_a + l_o, rel=1e-5)
    updated = [momentum * o + (1 - momentum) * n for o, n in zip(old_orig, r, strict=True)]
    assert torch.allclose(carl.orig.rows[0], torch.tensor(_unit(updated)), atol=1e-6)


def test_carl_loss_on_a_batch_of_two_averages_and_reaches_the_clean_representation():
    """Two examples of different labels, m = 3 negatives each drawn from several rows of the
    other label: L_D is the batch *mean* of each direction's term, each row against its own
    negatives, and both R and R_adv get the gradient (eq. 2 in both directions).  Catches: a
    sum over the batch; one row's negatives used for both; R detached."""
    tau, momentum = 0.2, 0.4
    carl = CARL([0, 1, 0, 1, 1], dim=2, warmup=0, num_negatives=3, tau=tau, momentum=momentum)
    orig = [_unit(v) for v in ([1.0, -1.0], [0.0, 1.0], [2.0, 1.0], [-1.0, 3.0], [1.0, 4.0])]
    adv = [_unit(v) for v in ([-2.0, 1.0], [1.0, 1.0], [0.5, -1.0], [3.0, -1.0], [-1.0, -2.0])]
    carl.orig.rows[:], carl.adv.rows[:] = torch.tensor(orig), torch.tensor(adv)
    carl.orig.filled[:] = carl.adv.filled[:] = True
    clean = torch.tensor([[[3.0, 1.0]], [[0.5, -2.0]]], requires_grad=True)
    adversarial = torch.tensor([[[1.0, 2.0]], [[-1.0, -1.5]]], requires_grad=True)
    context = ObjectiveContext(
        model=None, inputs={}, adversarial=SimpleNamespace(hidden_states=[adversarial]),
        clean=SimpleNamespace(hidden_states=[clean]), example_index=torch.tensor([0, 3]),
        step=0)
    state = carl.generator.get_state()
    value = carl.loss(context)
    carl.generator.set_state(state)  # the negatives the loss drew
    negatives = carl.sample_negatives(torch.tensor([0, 1])).tolist()
    assert set(negatives[0]) <= {1, 3, 4} and set(negatives[1]) <= {0, 2}  # other labels
    assert len(set(negatives[0])) > 1  # not one row m times: which negative is which counts
    expected = 0.0
    for b, (c, a) in enumerate(zip(([3.0, 1.0], [0.5, -2.0]), ([1.0, 2.0], [-1.0, -1.5]),
                                   strict=True)):
        r, r_adv = _unit(c), _unit(a)
        l_a = -_dot(r_adv, r) / tau + math.log(sum(math.exp(_dot(r_adv, orig[n]) / tau)
                                                    for n in negatives[b]))
        l_o = -_dot(r, r_adv) / tau + math.log(sum(math.exp(_dot(r, adv[n]) / tau)
                                                    for n in negatives[b]))
        expected += (l_a + l_o) / 2
    assert value.item() == pytest.approx(expected, rel=1e-5)
    value.backward()
    assert clean.grad.abs().sum() > 0 and adversarial.grad.abs().sum() > 0


def test_atcl_contrastive_loss_with_cosine_and_temperature_by_hand():
    """Eq. 6 with cosine similarity and τ = 0.07 on vectors that are not unit length; with
    n = B − 1 every other row is a negative, so the value is exact.  Catches: τ ignored; the
    cosine replaced by a dot product; the anchor among its own negatives."""
    anchors = [[3.0, 1.0], [0.0, 2.0], [-1.0, 1.5]]
    positives = [[1.0, 1.0], [1.0, 3.0], [-2.0, 0.5]]
    tau = 0.07
    value = atcl_contrastive_loss(torch.tensor(anchors), torch.tensor(positives),
                                  torch.tensor(anchors), 2, tau).item()

    def cos(x, y):
        return _dot(_unit(x), _unit(y))

    expected = 0.0
    for k, anchor in enumerate(anchors):
        scores = [cos(anchor, other) / tau for j, other in enumerate(anchors) if j != k]
        top = max(scores)
        expected += (top + math.log(sum(math.exp(s - top) for s in scores))
                     - cos(anchor, positives[k]) / tau)
    assert value == pytest.approx(expected / 3, rel=1e-5)


# ------------------------------------------------------------------------------ vulnerability


def test_vaa_attacks_the_predicted_label_of_a_misclassified_example(tiny_model_dir):
    """Paper 002 eq. 4–5: the FGSM of the vulnerability score follows the model's *predicted*
    label; on an example whose gold label is the other one, F1 and F2 equal the hand
    computation with the predicted label and differ from the gold-label one.
    Catches: VAA's FGSM attacking the gold label."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from advembed.data import Example
    from advembed.evaluation.settings import VulnerabilitySettings
    from advembed.evaluation.vulnerability import vulnerability_from_logits, vulnerability_scores

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_dir))
    model.eval()
    with torch.no_grad():  # a confident classifier, so the two attacks move F1 differently
        model.classifier.weight.mul_(40.0)
    text = "the plot was dull but the actors were great"
    encoded = tokenizer([text], return_tensors="pt")
    predicted = int(model(**encoded).logits.argmax(-1))
    example = Example(text, 1 - predicted)
    record = vulnerability_scores(model, tokenizer, [example], VulnerabilitySettings(epsilon=2.0),
                                  progress=False)[0]
    assert record["predicted"] == predicted != record["label"]

    adapter = EmbeddingAdapter(model)
    embeds = adapter.embed(encoded).detach()

    def scores_against(label):
        delta = torch.zeros_like(embeds, requires_grad=True)
        loss = adapter.forward(dict(encoded, labels=torch.tensor([label])), delta).loss
        (g,) = torch.autograd.grad(loss, delta)
        step = 2.0 * g / g.pow(2).sum().sqrt()
        with torch.no_grad():
            return vulnerability_from_logits(model(**encoded).logits,
                                             adapter.forward(encoded, step).logits)

    f1, f2 = scores_against(predicted)
    assert record["F1"] == pytest.approx(f1.item(), rel=1e-5)
    assert record["F2"] == pytest.approx(f2.item(), rel=1e-5)
    gold_f1, _ = scores_against(1 - predicted)
    assert abs(gold_f1.item() - f1.item()) > 0.05


@pytest.mark.parametrize("weight", [0.3, 0.0])
def test_the_clean_loss_carries_its_weight_beside_the_adversarial_one(weight):
    """FGM's step gradient is ``w·∇L(x) + ∇L(x + δ)`` with w = 0.3, and with w = 0 (Madry et
    al.'s formulation) the adversary runs from its own pass.  Catches: ``--adv-clean-weight``
    ignored."""
    from advembed.adversaries import FGM

    model = tiny_model(seed=5)
    model.eval()
    inputs = {k: v for k, v in _batch().items() if k != "example_index"}
    build_training_method("fgm", model, epsilon=0.4, clean_weight=weight).step(model, inputs)
    got = grads(model)
    model.zero_grad()
    adapter = EmbeddingAdapter(model)
    embeds = adapter.embed(inputs).detach()
    mask = adapter.mask(inputs, embeds)
    delta = FGM(epsilon=0.4).find(lambda d: adapter.forward(inputs, d).loss, embeds, mask)
    (weight * model(**inputs).loss + adapter.forward(inputs, delta).loss).backward()
    for key, value in grads(model).items():
        assert torch.allclose(got[key], value, atol=1e-6), key


def test_accuracy_under_attack_counts_an_example_broken_at_any_smaller_radius(monkeypatch):
    """An example the attack broke at ε = 0.1 stays broken at ε = 0.2 even if the attack at
    0.2 missed it (its δ lies in the larger ball too), so accuracy never rises with ε.
    Catches: each ε counted on its own."""
    import advembed.evaluation.robustness as robustness
    from advembed.data import Example
    from advembed.evaluation.settings import PGDAttackSettings

    outcomes = {0.1: torch.tensor([True, False]), 0.2: torch.tensor([False, True])}

    def fake_attack(adapter, task, batch, epsilon, settings):
        wrong = outcomes.get(epsilon, torch.tensor([False, False]))
        return robustness._BatchOutcome(wrong=wrong, cosine=torch.ones(2),
                                        distance=torch.zeros(2))

    monkeypatch.setattr(robustness, "attack_batch", fake_attack)

    class Tokenizer:
        def __call__(self, texts, **kwargs):
            return {"input_ids": [[1, 2]] * len(texts), "attention_mask": [[1, 1]] * len(texts)}

        def pad(self, features, **kwargs):
            return {key: torch.tensor([f[key] for f in features]) for key in features[0]}

    model = torch.nn.Linear(1, 1)
    model.get_input_embeddings = lambda: torch.nn.Embedding(3, 1)
    results, _ = robustness.pgd_robustness(
        model, Tokenizer(), [Example("a", 0), Example("b", 1)],
        PGDAttackSettings(epsilon=(0.0, 0.1, 0.2)), progress=False)
    assert [r.accuracy for r in results] == [1.0, 0.5, 0.0]


def test_expected_calibration_error_by_hand():
    """Four examples in three confidence bins of 15: |acc − conf| per bin, weighted by its
    share.  Catches: the unweighted mean over bins; the confidence of the true class instead
    of the predicted one."""
    import numpy as np

    from advembed.metrics import expected_calibration_error

    logits = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.35, 0.65], [0.97, 0.03]]))
    labels = np.array([0, 0, 1, 0])
    # confidences 0.9, 0.8, 0.65, 0.97 → bins (0.867, 0.933], (0.733, 0.8], (0.6, 0.667],
    # (0.933, 1]; correct: yes, no, yes, yes.
    expected = 0.25 * (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.65) + abs(1 - 0.97))
    assert expected_calibration_error(logits, labels) == pytest.approx(expected, rel=1e-9)
    two_in_one = np.log(np.array([[0.9, 0.1], [0.91, 0.09], [0.2, 0.8]]))
    weighted = (2 / 3) * abs(0.5 - 0.905) + (1 / 3) * abs(1 - 0.8)
    assert expected_calibration_error(two_in_one, np.array([0, 1, 1])) == pytest.approx(
        weighted, rel=1e-9)


def test_every_mutant_of_the_mutation_check_still_applies():
    """``benchmarks/mutation_check.py`` stops at a mutant whose original text moved; keep the
    list in step with the code (each original occurs once and the mutant compiles).  It reads
    the checkout's ``src/``, not the package under test, which is a mutated copy while the
    mutation check runs."""
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("mutation_check",
                                                  root / "benchmarks" / "mutation_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    source = root / "src" / "advembed"
    for mutant in module.MUTANTS:
        assert module.mutated(mutant, source) != (source / mutant.file).read_text()
