"""CARL, RAR and ATCL: hand-computed losses, banks, masks, and their composition."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_batch, tiny_model

from advembed.adversaries import FGM
from advembed.errors import AdvembedError
from advembed.methods import build_training_method
from advembed.objectives import (
    ATCL,
    CARL,
    RAR,
    MemoryBank,
    ObjectiveContext,
    Reconstructor,
    atcl_contrastive_loss,
    build_objective,
    carl_contrastive_loss,
    carl_nce_loss,
    complete_word_mask,
    estimate_log_z,
    param_groups,
    word_flags,
)
from advembed.objectives.atcl import token_contrastive_loss
from advembed.perturbation import l2_norm

# ------------------------------------------------------------------ CARL


def test_carl_loss_matches_hand_computation_on_a_toy_bank():
    tau = 0.5
    anchor = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[0.6, 0.8]])
    bank = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [0.8, -0.6]])  # 3 stored examples
    negatives = bank[torch.tensor([[1, 2]])]  # rows of other labels
    got = carl_contrastive_loss(anchor, positive, negatives, tau)
    # -log( exp(a·p/τ) / (exp(a·n1/τ) + exp(a·n2/τ)) ) with a·p = .6, a·n1 = -1, a·n2 = .8
    want = -math.log(math.exp(0.6 / tau) / (math.exp(-1.0 / tau) + math.exp(0.8 / tau)))
    assert got.item() == pytest.approx(want, rel=1e-6)
    with_positive = carl_contrastive_loss(anchor, positive, negatives, tau, include_positive=True)
    want = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(-2.0) + math.exp(1.6)))
    assert with_positive.item() == pytest.approx(want, rel=1e-6)


def test_carl_loss_is_eq2_with_raw_dot_products_on_vectors_of_other_lengths():
    """``--carl-normalize off`` is the paper's literal eq. 2: h = exp(x·y/τ) on the vectors as
    given.  Lengths 2.24, 1.58, 2.06, 3.16 and τ = 0.2: a loss that normalised inside, or
    divided by τ twice, gives another value."""
    tau = 0.2
    anchor, positive = torch.tensor([[2.0, 1.0]]), torch.tensor([[1.5, -0.5]])
    negatives = torch.tensor([[[0.5, 2.0], [-1.0, 3.0]]])
    got = carl_contrastive_loss(anchor, positive, negatives, tau)
    # a·p = 2.5, a·n1 = 3.0, a·n2 = 1.0
    want = -math.log(math.exp(2.5 / tau) / (math.exp(3.0 / tau) + math.exp(1.0 / tau)))
    assert got.item() == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(0.5 / tau + math.log1p(math.exp(-2.0 / tau)))


def test_carl_loss_is_stable_for_large_scores():
    """Scores up to 40/0.07 ≈ 571: exp() alone overflows float32; the value equals a float64
    reference computed the long way."""
    anchor = torch.tensor([[5.0, 3.0]])
    positive = torch.tensor([[4.0, 2.0]])
    negatives = torch.tensor([[[5.0, 5.0], [3.0, 4.0], [6.0, 0.0]]])
    value = carl_contrastive_loss(anchor, positive, negatives, 0.07)
    assert torch.isfinite(value)
    a, p, n = anchor.double(), positive.double(), negatives.double()
    scores = (n[0] @ a[0]) / 0.07
    want = -((a[0] @ p[0]) / 0.07 - torch.logsumexp(scores, 0))
    assert value.item() == pytest.approx(want.item(), rel=1e-5)


def test_carl_and_rar_defaults_are_the_papers():
    """Paper 001 §4.3: τ = 0.07, M = 0.5, w_r = 0.1."""
    from advembed.objectives.carl import CARLSettings
    from advembed.objectives.rar import RARSettings

    assert (CARLSettings().tau, CARLSettings().momentum) == (0.07, 0.5)
    assert RARSettings().weight == 0.1


def test_carl_banks_skip_a_row_whose_clean_or_adversarial_value_is_not_finite():
    """A step whose adversarial representation of example 1 is NaN writes neither bank's row
    1, so CARL stays inactive until both banks hold every row (no zero row as a negative)."""
    carl = CARL([0, 1, 0], dim=2, normalize=False, warmup=0)
    clean = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    adversarial = torch.tensor([[1.5, 2.0], [float("nan"), 4.0], [5.0, 6.5]])
    carl.remember(torch.arange(3), clean, adversarial)
    assert carl.orig.filled.tolist() == [True, False, True]
    assert carl.adv.filled.tolist() == [True, False, True]
    assert not carl.active
    carl.orig.update(torch.tensor([1]), clean[1:2])  # one bank alone full is not enough
    assert not carl.active
    carl.remember(torch.tensor([1]), clean[1:2], torch.tensor([[3.0, 4.5]]))
    assert carl.active and torch.equal(carl.adv.rows[1], torch.tensor([3.0, 4.5]))


def test_memory_bank_follows_eq5():
    bank = MemoryBank(3, 2, momentum=0.5, normalize=False)
    bank.update(torch.tensor([0, 2]), torch.tensor([[2.0, 4.0], [1.0, 1.0]]))
    assert torch.equal(bank.rows[0], torch.tensor([2.0, 4.0]))  # first write copies
    assert not bank.filled[1] and bank.filled[2]
    bank.update(torch.tensor([0]), torch.tensor([[4.0, 0.0]]))
    expected = 0.5 * torch.tensor([2.0, 4.0]) + 0.5 * torch.tensor([4.0, 0.0])
    assert torch.allclose(bank.rows[0], expected)
    normalized = MemoryBank(1, 2, momentum=0.5)
    normalized.update(torch.tensor([0]), torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(normalized.rows[0], torch.tensor([0.6, 0.8]))


def test_a_row_given_twice_in_one_update_takes_its_first_value():
    """DDP's sampler repeats examples to fill the last global batch: row 1 arrives twice.
    With M = 0.3 it becomes 0.3·(1, 2) + 0.7·(3, 5) = (2.4, 4.1), from its first value; the
    second, (10, 10), would give (7.3, 7.6) — the last write of a plain index assignment."""
    from advembed.objectives.carl import first_occurrences

    bank = MemoryBank(3, 2, momentum=0.3, normalize=False)
    bank.update(torch.tensor([1]), torch.tensor([[1.0, 2.0]]))
    bank.update(torch.tensor([1, 0, 1]), torch.tensor([[3.0, 5.0], [7.0, 9.0], [10.0, 10.0]]))
    assert torch.allclose(bank.rows[1], torch.tensor([2.4, 4.1]))
    assert torch.equal(bank.rows[0], torch.tensor([7.0, 9.0]))
    assert first_occurrences(torch.tensor([5, 3, 5, 3, 8])).tolist() == [0, 1, 4]


def test_carl_nce_matches_hand_computation():
    tau, n_data, log_z = 0.5, 10, math.log(3.0)
    anchor = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[0.6, 0.8]])
    negatives = torch.tensor([[[0.0, 1.0], [0.8, -0.6]]])  # m = 2
    got = carl_nce_loss(anchor, positive, negatives, tau, log_z=log_z, num_data=n_data)
    noise = 2 / n_data  # m · P_n with P_n = 1/N

    def x(score):
        return math.exp(score / tau) / 3.0

    def data(score):  # D = x / (x + m·P_n)
        return x(score) / (x(score) + noise)

    want = -(math.log(data(0.6)) + math.log(1 - data(0.0)) + math.log(1 - data(0.8)))
    assert got.item() == pytest.approx(want, rel=1e-6)
    # Z = N · mean exp(score/τ) over the batch's three pairs.
    z = n_data * sum(math.exp(v / tau) for v in (0.6, 0.0, 0.8)) / 3
    assert estimate_log_z(anchor, positive, negatives, tau, n_data) == pytest.approx(
        math.log(z), rel=1e-6)
    # Stable where exp(score/τ) overflows float32, and lower when the positive is closer.
    big = carl_nce_loss(anchor * 100, anchor * 100, negatives * 100, 0.07, log_z=0.0,
                        num_data=n_data)
    assert torch.isfinite(big)
    far = carl_nce_loss(anchor, -anchor, negatives, tau, log_z=log_z, num_data=n_data)
    assert got < far


def test_carl_nce_fixes_z_on_the_first_active_step():
    model = tiny_model()
    model.eval()
    inputs = tiny_batch(batch=4, length=8, seed=2)
    labels = inputs["labels"].tolist() * 2
    carl = CARL(labels, dim=model.config.hidden_size, num_negatives=3, nce=True, warmup=0)
    index = torch.arange(4)
    carl.loss(_carl_context(model, inputs, index, step=0))
    carl.loss(_carl_context(model, inputs, index + 4, step=1))  # banks full now
    assert carl.active and carl.log_z == {}
    first = carl.loss(_carl_context(model, inputs, index, step=2))
    assert set(carl.log_z) == {"a", "o"} and torch.isfinite(first) and first > 0
    fixed = dict(carl.log_z)
    carl.loss(_carl_context(model, inputs, index, step=3))
    assert carl.log_z == fixed


def test_carl_negatives_never_share_the_anchor_label():
    labels = [0, 1, 2, 0, 1, 2, 0, 1]
    carl = CARL(labels, dim=4, num_negatives=50, seed=1, warmup=0)
    batch_labels = torch.tensor([0, 1, 2, 0])
    negatives = carl.sample_negatives(batch_labels)
    assert negatives.shape == (4, 50)
    all_labels = torch.tensor(labels)
    for row, label in zip(negatives, batch_labels, strict=True):
        assert torch.all(all_labels[row] != label)
    assert set(negatives[0].tolist()) == {1, 2, 4, 5, 7}  # every other-label example is used


def _carl_context(model, inputs, index, step):
    clean = model(**inputs, output_hidden_states=True)
    adversarial = model(**inputs, output_hidden_states=True)
    return ObjectiveContext(model=model, inputs=inputs, adversarial=adversarial, clean=clean,
                            example_index=index, step=step)


def test_carl_banks_filled_from_mid_epoch_are_full_only_after_the_next_epoch():
    """Batches of one, warm-up 2 steps, epochs in the order 0,1,2,3 then 3,2,1,0: examples 0
    and 1 pass during the warm-up and come back only at steps 6 and 7, so L_D is zero on all
    8 steps of an 8-step run, and the schedule warning says so (full at step 8, not at
    warm-up + one epoch = 6)."""
    model = tiny_model()
    model.eval()
    inputs = tiny_batch(batch=1, num_labels=2, seed=2)
    carl = CARL([0, 1, 0, 1], dim=model.config.hidden_size, num_negatives=3, warmup=2)
    for step, index in enumerate([0, 1, 2, 3, 3, 2, 1, 0]):
        assert carl.loss(_carl_context(model, inputs, torch.tensor([index]), step)).item() == 0.0
        assert carl.active == (step == 7), step
    assert "at step 8, and the run has 8" in carl.schedule_warning(4, 8)


def test_carl_term_is_zero_before_warmup_and_until_the_banks_are_full():
    model = tiny_model()
    model.eval()
    inputs = tiny_batch(batch=4, num_labels=2, seed=2)
    labels = [0, 1, 0, 1, 0, 1, 0, 1]
    carl = CARL(labels, dim=model.config.hidden_size, num_negatives=3, warmup=2)
    first, second = torch.arange(0, 4), torch.arange(4, 8)
    assert carl.loss(_carl_context(model, inputs, first, step=0)).item() == 0.0
    assert not carl.orig.filled.any()  # nothing happens before warm-up
    assert carl.loss(_carl_context(model, inputs, first, step=2)).item() == 0.0
    assert carl.orig.filled.sum() == 4 and not carl.active  # filling
    assert carl.loss(_carl_context(model, inputs, second, step=3)).item() == 0.0
    assert carl.active  # every training example has been seen once
    value = carl.loss(_carl_context(model, inputs, first, step=4))
    assert value.item() != 0.0 and value.requires_grad


def test_carl_fill_banks_fills_every_row():
    model = tiny_model()
    carl = CARL([0, 1, 0, 1], dim=model.config.hidden_size, warmup=0)
    batch = tiny_batch(batch=4, seed=3)
    batch["example_index"] = torch.arange(4)
    carl.fill_banks(model, [batch])
    assert carl.active
    assert torch.allclose(carl.orig.rows.norm(dim=1), torch.ones(4), atol=1e-5)


def test_carl_steps_after_warmup_write_clean_rows_to_orig_and_adversarial_rows_to_adv():
    """Eq. 5 through ``CARL.loss``: nothing before the warm-up, then each bank's first write
    copies, and the next one mixes with momentum M = 0.25 — B_orig gets R, B_adv gets R_adv."""
    carl = CARL([0, 1], dim=2, momentum=0.25, normalize=False, warmup=1)
    carl.representation = lambda outputs, inputs: outputs  # outputs are the representations
    index = torch.tensor([0, 1])

    def step(clean, adversarial, number):
        carl.loss(ObjectiveContext(model=None, inputs={}, adversarial=torch.tensor(adversarial),
                                   clean=torch.tensor(clean), example_index=index,
                                   step=number))

    step([[9.0, 9.0], [9.0, 9.0]], [[7.0, 7.0], [7.0, 7.0]], 0)  # before the warm-up
    assert not carl.orig.filled.any() and not carl.adv.filled.any()
    step([[1.0, 2.0], [3.0, -1.0]], [[0.0, 1.0], [2.0, 2.0]], 1)
    assert torch.equal(carl.orig.rows, torch.tensor([[1.0, 2.0], [3.0, -1.0]]))
    assert torch.equal(carl.adv.rows, torch.tensor([[0.0, 1.0], [2.0, 2.0]]))
    step([[5.0, 2.0], [-1.0, 3.0]], [[2.0, -2.0], [4.0, 0.0]], 2)
    # 0.25 · old + 0.75 · new
    assert torch.allclose(carl.orig.rows, torch.tensor([[4.0, 2.0], [0.0, 2.0]]))
    assert torch.allclose(carl.adv.rows, torch.tensor([[1.5, -1.25], [3.5, 0.5]]))


# ------------------------------------------------------------------ RAR


def _gelu(x):
    return x * 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_rar_head_is_albert_s_mlm_head_dense_gelu_layernorm_then_the_tied_embedding_by_hand():
    """``--rar-head mlm``, on hidden 2 → embedding 3 (so a LayerNorm over the hidden size
    could not even be built with these weights): Linear, GeLU, LayerNorm(embedding), E·h + b."""
    head = Reconstructor(hidden_size=2, embedding_size=3, vocab_size=3, order="mlm")
    assert head.norm.normalized_shape == (3,)
    with torch.no_grad():
        head.dense.weight.copy_(torch.tensor([[1.0, 0.0], [0.5, -1.0], [-1.0, 2.0]]))
        head.dense.bias.copy_(torch.tensor([0.1, 0.0, 0.2]))
        head.norm.weight.copy_(torch.tensor([2.0, 0.5, 1.0]))
        head.norm.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))
        head.bias.copy_(torch.tensor([0.0, 0.5, -0.5]))
    embedding = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, -1.0, 0.5]])
    got = head(torch.tensor([[3.0, 1.0]]), embedding)[0].tolist()
    g = [_gelu(3.1), _gelu(0.5), _gelu(-0.8)]  # GeLU of W·(3, 1) + b = (3.1, 0.5, −0.8)
    mean = sum(g) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in g) / 3 + 1e-5)  # biased variance, eps 1e-5
    h = [w * (x - mean) / std + b for x, w, b in zip(g, (2.0, 0.5, 1.0), (0.5, -1.0, 0.0),
                                                   strict=True)]
    want = [h[0] + 0.0, h[1] + h[2] + 0.5, h[0] - h[1] + 0.5 * h[2] - 0.5]
    assert got == pytest.approx(want, rel=1e-5)


def test_the_listed_rar_head_is_layernorm_gelu_dense_then_the_tied_embedding_by_hand():
    head = Reconstructor(hidden_size=2, embedding_size=2, vocab_size=3)  # the default order
    assert head.order == "listed"
    with torch.no_grad():
        head.norm.weight.copy_(torch.tensor([2.0, 0.5]))
        head.norm.bias.copy_(torch.tensor([0.5, -1.0]))
        head.dense.weight.copy_(torch.tensor([[1.0, 0.0], [0.5, -1.0]]))
        head.dense.bias.copy_(torch.tensor([0.1, 0.0]))
        head.bias.copy_(torch.tensor([0.0, 0.5, -0.5]))
    embedding = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])  # vocabulary of 3
    got = head(torch.tensor([[3.0, 1.0]]), embedding)[0].tolist()
    z = 1 / math.sqrt(1 + 1e-5)  # LayerNorm of (3, 1): mean 2, variance 1, eps 1e-5
    n1, n2 = _gelu(2.0 * z + 0.5), _gelu(0.5 * -z - 1.0)  # ≈ gelu(2.5), gelu(-1.5)
    h1, h2 = n1 + 0.1, 0.5 * n1 - n2  # Linear(hidden → embedding)
    want = [h1 + 0.0, h2 + 0.5, h1 - h2 - 0.5]  # tied output E·h + bias
    assert got == pytest.approx(want, rel=1e-5)


def test_rar_decoder_is_the_embedding_matrix_and_trains_it():
    model = tiny_model()
    rar = RAR(model, special_ids={0, 2, 3})
    embedding = model.get_input_embeddings().weight
    own = {p.data_ptr() for p in rar.reconstructor.parameters()}
    assert embedding.data_ptr() not in own  # no copy: the weight is used where it lives
    assert "advembed_reconstructor.bias" in dict(model.named_parameters())
    states = torch.randn(5, model.config.hidden_size)
    before = rar.logits(model, states)
    with torch.no_grad():
        embedding[7, 0] += 1.0  # same storage: the decoder sees the change at once (one
        # coordinate: a LayerNorm output sums to 0, so a shift of the whole row changes nothing)
    after = rar.logits(model, states)
    assert not torch.allclose(before[:, 7], after[:, 7])
    assert torch.allclose(before[:, 8], after[:, 8])
    model.zero_grad()
    rar.logits(model, states)[:, 7].sum().backward()
    assert embedding.grad[7].abs().sum() > 0


def test_rar_loss_is_cross_entropy_on_real_non_special_positions():
    model = tiny_model()
    model.eval()
    inputs = tiny_batch(batch=3, length=8, seed=4)
    special = {0, 2, 3}
    rar = RAR(model, special_ids=special, weight=0.1)
    outputs = model(**inputs, output_hidden_states=True)
    context = ObjectiveContext(model=model, inputs=inputs, adversarial=outputs, clean=None,
                               example_index=None, step=0)
    got = rar.loss(context)
    states = outputs.hidden_states[-1]
    logits = rar.logits(model, states)
    special = torch.isin(inputs["input_ids"], torch.tensor([0, 2, 3]))
    keep = (inputs["attention_mask"] == 1) & ~special
    assert keep.sum() < keep.numel()  # the batch has padding and [CLS]
    want = 0.1 * F.cross_entropy(logits[keep], inputs["input_ids"][keep])
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    # Changing what sits at padding positions does not change the loss.
    changed = dict(inputs)
    ids = inputs["input_ids"].clone()
    ids[inputs["attention_mask"] == 0] = 9
    changed["input_ids"] = ids
    outputs2 = model(**changed, output_hidden_states=True)
    again = rar.loss(ObjectiveContext(model, changed, outputs2, None, None, 0))
    assert again.item() == pytest.approx(got.item(), rel=1e-4)


def test_rar_on_a_batch_with_no_real_token_gives_its_reconstructor_zero_gradients_not_none():
    """Under DDP the reconstructor's gradients are all-reduced by hand: a process whose batch
    holds only special tokens must still take part, with zeros (None would skip it there)."""
    model = tiny_model()
    inputs = {"input_ids": torch.tensor([[2, 3, 0, 0]]),
              "attention_mask": torch.tensor([[1, 1, 0, 0]])}
    rar = RAR(model, special_ids={0, 2, 3})
    outputs = model(**inputs, output_hidden_states=True)
    loss = rar.loss(ObjectiveContext(model, inputs, outputs, None, None, 0))
    assert loss.item() == 0.0
    loss.backward()
    grads = [p.grad for p in rar.local_parameters()]
    assert grads and all(g is not None and not g.any() for g in grads)


def test_rar_lr_puts_only_the_reconstructor_in_its_own_group():
    model = tiny_model()
    assert RAR(model, special_ids={0}, lr=None).learning_rates() == []  # paper: one rate
    model = tiny_model()
    rar = RAR(model, special_ids={0})  # default: the reconstructor at 1e-3
    groups = param_groups(model, 2e-5, rar)
    by_id = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert sum(len(g["params"]) for g in groups) == len(by_id)  # no parameter twice
    assert len(by_id) == len(list(model.parameters()))  # and none left out
    names = {id(p): n for n, p in model.named_parameters()}
    fast = {names[i] for i, lr in by_id.items() if lr == 1e-3}
    assert fast == {"advembed_reconstructor.norm.weight", "advembed_reconstructor.norm.bias",
                    "advembed_reconstructor.dense.weight", "advembed_reconstructor.dense.bias",
                    "advembed_reconstructor.bias"}
    # The tied output weight is the embedding matrix: it stays at the model's rate.
    assert by_id[id(model.get_input_embeddings().weight)] == 2e-5
    with pytest.raises(AdvembedError, match="--rar-lr must be > 0"):
        build_objective("rar", tiny_model(), tokenizer=FakeTokenizer(["[PAD]", "a"], ["[PAD]"]),
                        lr=0.0)


def test_trainer_steps_the_reconstructor_at_its_own_rate(tmp_path):
    """Adam's first update moves every weight by about its learning rate (g/|g|): with
    ``--rar-lr 1e-3`` the reconstructor moves ~50x more than the encoder at 2e-5, and the
    groups keep the stock weight-decay split."""
    from transformers import TrainingArguments

    from advembed.training.trainer import AdvTrainer

    model = tiny_model()
    rar = RAR(model, special_ids={0, 2, 3}, lr=1e-3)
    method = build_training_method("fgm", model, objective=rar)
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=2e-5, weight_decay=0.01,
                             warmup_ratio=0.0, lr_scheduler_type="constant", report_to="none")
    trainer = AdvTrainer(model=model, args=args, method=method)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    optimizer = trainer.optimizer
    groups = {(g["lr"], g["weight_decay"]) for g in optimizer.param_groups}
    assert groups == {(2e-5, 0.01), (2e-5, 0.0), (1e-3, 0.01), (1e-3, 0.0)}
    dense = rar.reconstructor.dense.weight
    encoder = model.get_input_embeddings().weight
    before = dense.detach().clone(), encoder.detach().clone()
    model.train()
    method.step(model, tiny_batch(batch=4, length=8, seed=1), lambda loss: loss.backward())
    optimizer.step()
    moved_dense = (dense.detach() - before[0]).abs()
    moved_encoder = (encoder.detach() - before[1]).abs()
    assert moved_dense.max().item() == pytest.approx(1e-3, rel=0.05)
    assert moved_encoder.max().item() == pytest.approx(2e-5, rel=0.05)


# ------------------------------------------------------------------ ATCL


class FakeTokenizer:
    def __init__(self, tokens, special):
        self.tokens = tokens
        self.all_special_ids = [tokens.index(t) for t in special]

    def __len__(self):
        return len(self.tokens)

    def convert_ids_to_tokens(self, ids):
        return [self.tokens[i] for i in ids]


def _mask_of(tokenizer, sentence):
    ids = torch.tensor([[tokenizer.tokens.index(t) for t in sentence]])
    return complete_word_mask(ids, torch.ones_like(ids), word_flags(tokenizer))[0].tolist()


def test_atcl_mask_on_wordpiece():
    vocab = ["[PAD]", "[CLS]", "[SEP]", "the", "movie", "un", "##believ", "##able", "!", "a",
             "42", "great", "x1", "##s"]
    tok = FakeTokenizer(vocab, ["[PAD]", "[CLS]", "[SEP]"])
    sentence = ["[CLS]", "the", "movie", "un", "##believ", "##able", "!", "a", "42", "great",
                "x1", "[SEP]"]
    assert _mask_of(tok, sentence) == [False, True, True, False, False, False, False, False,
                                       False, True, False, False]
    # A word followed by a sub-word piece is split, so excluded ("movie" + "##s").
    assert _mask_of(tok, ["[CLS]", "movie", "##s", "great", "[SEP]"]) == [
        False, False, False, True, False]


def test_atcl_mask_leaves_out_both_sides_of_a_contraction():
    """BERT's pre-tokenizer cuts *don't* into ``don`` ``'`` ``t`` and *we're* into ``we``
    ``'`` ``re``: neither side is a complete word.  SentencePiece writes *don't* as ``▁don``
    ``'`` ``t``; its quote opening a word, ``▁'``, joins nothing."""
    vocab = ["[PAD]", "[CLS]", "[SEP]", "we", "'", "re", "don", "t", "like", "it", "\u2019"]
    tok = FakeTokenizer(vocab, ["[PAD]", "[CLS]", "[SEP]"])
    assert _mask_of(tok, ["[CLS]", "we", "'", "re", "don", "\u2019", "t", "like", "it",
                          "[SEP]"]) == [False, False, False, False, False, False, False, True,
                                        True, False]
    assert _mask_of(tok, ["[CLS]", "like", "'", "it", "[SEP]"]) == [  # a quote: left out too
        False, False, False, False, False]
    pieces = ["<pad>", "<s>", "</s>", "\u2581don", "'", "t", "\u2581like", "\u2581'", "\u2581it"]
    tok = FakeTokenizer(pieces, ["<pad>", "<s>", "</s>"])
    assert _mask_of(tok, ["<s>", "\u2581don", "'", "t", "\u2581like", "\u2581'", "\u2581it",
                          "</s>"]) == [False, False, False, False, True, False, True, False]


def test_atcl_mask_on_byte_level_bpe():
    vocab = ["<pad>", "<s>", "</s>", "The", "Ġmovie", "Ġun", "believ", "able", "Ġgreat", ",",
             "Ġ!", "Ġ2020", "Ġa", "Ġreally"]
    tok = FakeTokenizer(vocab, ["<pad>", "<s>", "</s>"])
    sentence = ["<s>", "The", "Ġmovie", "Ġun", "believ", "able", "Ġgreat", ",", "Ġ!", "Ġ2020",
                "Ġa", "Ġreally", "</s>"]
    # "The" starts the sentence without Ġ; "great," keeps "great" (punctuation is no piece).
    assert _mask_of(tok, sentence) == [False, True, True, False, False, False, True, False,
                                       False, False, False, True, False]
    quoted = ["<pad>", "<s>", "</s>", "Ġa", 'Ġ"', "good", '"', "Ġ(", "fine", "ly", ")"]
    tok = FakeTokenizer(quoted, ["<pad>", "<s>", "</s>"])
    # a "good" (finely): the bare word after Ġ" is whole; "fine" + "ly" after Ġ( is split
    assert _mask_of(tok, ["<s>", "Ġa", 'Ġ"', "good", '"', "Ġ(", "fine", "ly", ")", "</s>"]) == [
        False, False, False, True, False, False, False, False, False, False]


def test_atcl_mask_reads_byte_level_pieces_as_the_utf8_text_they_spell():
    # café, très, für as GPT-2's byte alphabet writes them; "Ġcaf" + "Ã" + "©" cuts é in two
    vocab = ["<pad>", "<s>", "</s>", "ĠcafÃ©", "ĠtrÃ¨s", "ĠfÃ¼r", "Ġbon", "Ġcaf", "Ã", "©",
             "Ġ2020", ",", "##"]  # a stray "##" (learnt from text) must not make it WordPiece
    tok = FakeTokenizer(vocab, ["<pad>", "<s>", "</s>"])
    assert _mask_of(tok, ["<s>", "ĠcafÃ©", "ĠtrÃ¨s", "ĠfÃ¼r", "Ġbon", ",", "Ġ2020", "</s>"]) == [
        False, True, True, True, True, False, False, False]
    assert _mask_of(tok, ["<s>", "Ġcaf", "Ã", "©", "Ġbon", "</s>"]) == [
        False, False, False, False, True, False]


def test_atcl_mask_on_a_block_cut_from_a_stream_skips_words_cut_at_its_edges():
    vocab = ["<|endoftext|>", "able", "Ġcat", "Ġsat", "Ġun", "Ġon"]
    tok = FakeTokenizer(vocab, ["<|endoftext|>"])
    ids = torch.tensor([[vocab.index(t) for t in ["able", "Ġcat", "Ġsat", "Ġun"]]])
    flags = word_flags(tok)
    # "able" ends a word begun in the block before; "Ġun" may go on in the next one
    assert complete_word_mask(ids, torch.ones_like(ids), flags, cut_edges=True)[0].tolist() == [
        False, True, True, False]
    assert complete_word_mask(ids, torch.ones_like(ids), flags)[0].tolist() == [
        True, True, True, True]  # as sentences: "able" opens the row, "Ġun" closes it


def test_the_lm_task_builds_atcl_for_blocks_cut_from_a_stream(monkeypatch):
    import advembed.objectives as objectives
    from advembed.tasks import get_task
    from advembed.training.config import TrainConfig
    from advembed.training.run import build_method

    seen = []

    def spy(*args, **kwargs):
        seen.append((kwargs["token_level"], kwargs["cut_stream"]))
        raise StopIteration

    monkeypatch.setattr(objectives, "build_objective", spy)
    for task in ("lm", "translation", "classification"):
        with pytest.raises(StopIteration):
            build_method(TrainConfig(method="fgm", objective="atcl"), tiny_model(),
                         task=get_task(task))
    # LM blocks are cut from a stream; translation and classification rows are whole sentences
    assert seen == [(True, True), (True, False), (False, False)]
    monkeypatch.undo()
    for task, cut in (("lm", True), ("translation", False), ("classification", False)):
        method = build_method(TrainConfig(method="fgm"), tiny_model(), task=get_task(task))[0]
        assert method.cut_stream is cut  # what ASCC's synonym lookup is told


def test_atcl_mask_with_a_real_wordpiece_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    encoded = tokenizer(["the movie is great !"], return_tensors="pt")
    mask = complete_word_mask(encoded["input_ids"], encoded["attention_mask"],
                              word_flags(tokenizer))[0]
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert [t for t, m in zip(tokens, mask.tolist(), strict=True) if m] == [
        "the", "movie", "is", "great"]


def _tiny_classifier(model_dir, texts: list[str], labels: list[int]):
    """``(tokenizer, model in eval mode, labelled batch)`` of the tiny BERT folder."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    model.eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    batch["labels"] = torch.tensor(labels)
    return tokenizer, model, batch


def test_atcl_perturbs_one_complete_word_per_sentence_with_norm_epsilon(tiny_model_dir):
    tokenizer, model, batch = _tiny_classifier(
        tiny_model_dir, ["the movie is great", "bad plot , awful actors !", "42 !"], [1, 0, 0])
    atcl = ATCL(tokenizer, seed=3)
    method = build_training_method("fgm", model, objective=atcl)
    assert method.adversary.epsilon == pytest.approx(0.03)
    embeds = method.adapter.embed(batch).detach()
    mask = method._mask(batch, embeds)
    per_sentence = mask.squeeze(-1).sum(dim=1).tolist()
    assert per_sentence == [1, 1, 0]  # the third sentence has no complete word
    candidates = atcl.candidate_mask(batch)
    assert torch.all(candidates[mask.squeeze(-1).bool()])

    def loss_at(delta):
        return method.adapter.forward(batch, delta).loss

    delta = FGM(epsilon=0.03).find(loss_at, embeds, mask)
    touched = (delta.abs().sum(-1) > 0)
    assert touched.sum(dim=1).tolist() == [1, 1, 0]
    norms = l2_norm(delta, mask).flatten()
    assert norms[:2].tolist() == pytest.approx([0.03, 0.03], rel=1e-4)
    assert loss_at(delta) > loss_at(torch.zeros_like(delta))  # ascent: the loss goes up


def test_atcl_contrastive_loss_prefers_the_true_positive():
    torch.manual_seed(0)
    anchor = torch.randn(6, 8)
    pool = anchor.clone()
    same = atcl_contrastive_loss(anchor, anchor.clone(), pool, 3,
                                 generator=torch.Generator().manual_seed(0))
    other = atcl_contrastive_loss(anchor, anchor.roll(1, dims=0), pool, 3,
                                  generator=torch.Generator().manual_seed(0))
    assert same < other
    # The anchor is never its own negative: with identical rows elsewhere the loss is exact.
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    value = atcl_contrastive_loss(a, a, a, 1, tau=1.0)
    assert value.item() == pytest.approx(-(1.0 - 0.0), abs=1e-6)  # -log(e^1 / e^0)


def test_atcl_anchors_are_the_perturbed_sentences_clean_states_by_hand():
    """Eq. 6 with anchor = clean, positive = adversarial, negatives = the other clean rows
    (n ≥ the pool: all of them); a sentence with no complete word is a negative, not an anchor;
    times β."""
    atcl = ATCL(FakeTokenizer(["[PAD]", "a"], ["[PAD]"]), beta=0.3, tau=0.5, num_negatives=5)
    atcl.representation = lambda outputs, inputs: outputs
    clean = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    adversarial = torch.tensor([[0.8, 0.6], [1.0, 0.0], [0.6, -0.8]])
    atcl.chosen = (torch.tensor([0, 0, 0]), torch.tensor([True, False, True]))
    context = ObjectiveContext(model=None, inputs={}, adversarial=adversarial, clean=clean,
                               example_index=None, step=0)

    def cos(u, v):
        return (u @ v / (u.norm() * v.norm())).item()

    def term(k):
        negatives = [j for j in range(3) if j != k]
        return (math.log(sum(math.exp(cos(clean[k], clean[j]) / 0.5) for j in negatives))
                - cos(clean[k], adversarial[k]) / 0.5)

    assert atcl.loss(context).item() == pytest.approx(0.3 * (term(0) + term(2)) / 2, rel=1e-5)
    assert atcl.adversarial_weight == atcl.settings.alpha == 0.1
    alone = ObjectiveContext(model=None, inputs={}, adversarial=adversarial[:1],
                             clean=clean[:1], example_index=None, step=1)
    atcl.chosen = (torch.tensor([0]), torch.tensor([True]))
    with pytest.warns(UserWarning, match="a batch of one sentence has no in-batch negative"):
        assert atcl.loss(alone).item() == 0.0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per run, not once per step
        assert atcl.loss(alone).item() == 0.0


@pytest.mark.parametrize("alpha", [0.4, 2.5])
def test_atcl_step_gradient_weighs_the_adversarial_loss_by_alpha(tiny_model_dir, alpha):
    """Paper 004 eq. 1 with β = 0: the step's parameter gradient is ∇(L(E) + α·L(E + δ)) at
    the one-word FGM δ the step used, for α = 0.4 and 2.5 (a step that ignored α, or used
    1 − α, gives another gradient).  Catches: α dropped where the method weighs the loss."""
    import copy

    from advembed.adapter import EmbeddingAdapter

    tok, model, batch = _tiny_classifier(
        tiny_model_dir, ["the movie is great", "bad plot , awful actors !",
                         "a great great movie"], [1, 0, 1])
    reference = copy.deepcopy(model)
    method = build_training_method("fgm", model, objective=ATCL(tok, seed=3, alpha=alpha,
                                                                 beta=0.0))
    deltas = []
    forward = method.adapter.forward

    def recording(inputs, delta=None, **kwargs):
        if delta is not None:
            deltas.append(delta.detach().clone())
        return forward(inputs, delta, **kwargs)

    method.adapter.forward = recording
    model.zero_grad()
    method.step(model, dict(batch))
    delta = deltas[-1]
    assert ((delta.abs().sum(-1) > 0).sum(1) <= 1).all() and delta.abs().sum() > 0  # one word
    adapter = EmbeddingAdapter(reference)
    reference.zero_grad()
    inputs = dict(batch)
    (adapter.forward(inputs).loss + alpha * adapter.forward(inputs, delta).loss).backward()
    for (name, got), want in zip(model.named_parameters(), reference.parameters(), strict=True):
        if want.grad is not None:
            assert torch.allclose(got.grad, want.grad, atol=1e-6), name


def test_atcl_picks_its_word_uniformly_among_the_candidates():
    vocab = ["[PAD]", "[CLS]", "[SEP]", "good", "film", "!", "very"]
    tok = FakeTokenizer(vocab, ["[PAD]", "[CLS]", "[SEP]"])
    atcl = ATCL(tok, seed=4)
    ids = torch.tensor([[1, 3, 5, 4, 6, 2]]).repeat(600, 1)  # [CLS] good ! film very [SEP]
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    mask = atcl.perturbation_mask(batch, torch.ones(600, 6, 1))
    counts = mask.squeeze(-1).sum(0).tolist()
    assert counts[0] == counts[2] == counts[5] == 0 and sum(counts) == 600
    assert all(abs(counts[i] - 200) < 45 for i in (1, 3, 4))  # ~1/3 each


def test_token_contrastive_loss_with_fewer_tokens_than_negatives_never_takes_the_anchor():
    pool = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    anchor, positive = pool[2:], torch.tensor([[1.0, 2.0]])
    value = token_contrastive_loss(anchor, positive, pool, torch.tensor([2]), 5, tau=0.4)
    cos_pos = (1 * 3 + 2 * 3) / (5 ** 0.5 * 18 ** 0.5)
    cos_neg = 3 / 18 ** 0.5  # with row 0 and with row 1 alike
    expected = math.log(2 * math.exp(cos_neg / 0.4)) - cos_pos / 0.4
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_atcl_contrastive_loss_accepts_token_level_representations():
    tokens = torch.randn(2 * 5, 4)  # (B·L, d) flattened token states
    value = atcl_contrastive_loss(tokens, tokens + 0.01, tokens, 5, 0.07,
                                  generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(value)


# ------------------------------------------------------------------ composition


@pytest.mark.parametrize("method", ["fgm", "pgd", "freelb", "yopo", "smart"])
@pytest.mark.parametrize("objective", ["carl", "rar"])
def test_any_adversary_composes_with_any_objective(method, objective):
    model = tiny_model(dropout=0.1)
    model.train()
    inputs = tiny_batch(batch=4, seed=5)
    inputs["example_index"] = torch.arange(4)

    class Tok:
        all_special_ids = [0, 1, 2, 3, 4]

    options = {"warmup": 0.0} if objective == "carl" else {}
    built = build_objective(objective, model, tokenizer=Tok(), train_labels=[0, 1, 0, 1],
                            total_steps=10, **options)
    training = build_training_method(method, model, objective=built)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # CARL: first step fills the banks, the second uses them
        loss = training.step(model, inputs)
        optimizer.step()
        optimizer.zero_grad()
        assert torch.isfinite(loss)
    if objective == "carl":
        assert built.active


def test_objective_adds_its_term_to_the_adversarial_loss():
    model = tiny_model()
    model.eval()
    inputs = tiny_batch(batch=4, seed=6)
    plain = build_training_method("fgm", model).step(model, inputs)
    rar = RAR(model, special_ids={0, 2}, weight=1.0)
    with_rar = build_training_method("fgm", model, objective=rar).step(model, inputs)
    assert with_rar.item() > plain.item() + 1.0  # L_R of a random head ≈ log(vocab) ≫ 1


def test_each_process_draws_its_own_words_and_negatives(monkeypatch):
    """Under DDP every rank builds ATCL and CARL with the run's seed; the rank is added to it,
    so ranks pick different words and negatives for same-shaped batches (identical draws on
    every rank would leave the global batch 1/P of its independent draws)."""
    tok = FakeTokenizer(["[PAD]", "[CLS]", "[SEP]", "good", "film", "very"],
                        ["[PAD]", "[CLS]", "[SEP]"])
    ids = torch.tensor([[1, 3, 4, 5, 2]]).repeat(64, 1)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    picks = {}
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        atcl = ATCL(tok, seed=4)
        picks[rank] = atcl.perturbation_mask(batch, torch.ones(64, 5, 1)).squeeze(-1)
        carl = CARL([0, 1] * 8, dim=2, warmup=0)
        picks[rank + "carl"] = carl.sample_negatives(torch.tensor([0, 1] * 4))
    assert not torch.equal(picks["0"], picks["1"])
    assert not torch.equal(picks["0carl"], picks["1carl"])
    monkeypatch.setenv("RANK", "0")
    assert torch.equal(ATCL(tok, seed=4).perturbation_mask(batch, torch.ones(64, 5, 1))
                       .squeeze(-1), picks["0"])  # and a rank's draws stay seeded
