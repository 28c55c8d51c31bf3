"""Mutation check: break the math on purpose, one change at a time, and see whether a test fails.

Each mutant below is a single change of one formula in ``src/`` (a line, or two lines that
form one expression) and the test files that should catch it.  For every mutant the script
copies ``src/`` to a temporary folder, applies the change, and runs those tests against the
copy (``PYTHONPATH`` puts the copy first); a mutant *survives* when every test still passes.
The list started with the 12 survivors of a review (issue 18) and grows with every equation:
add a mutant next to each new formula.

    python benchmarks/mutation_check.py            # all mutants
    python benchmarks/mutation_check.py --only carl  # mutants whose name contains "carl"

Exits 0 only when no mutant survives; the last line is ``N mutants, K survived``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "advembed"

EQ = "tests/test_equations.py"
ADV = "tests/test_adversaries.py"
OBJ = "tests/test_objectives.py"
ROB = "tests/test_robustness.py"
TASKS = "tests/test_tasks.py"
DIST = "tests/test_distributed.py"
VAA = "tests/test_vaa.py"
VDA = "tests/test_vda.py"
LM = "tests/test_lm.py"
QA = "tests/test_qa_matching.py"
ESIM = "tests/test_esim.py"
MT = "tests/test_translation.py"
BIBLE = "tests/test_bible.py"
GUARD = ("tests/test_reliability.py::"
         "test_the_collapse_guard_judges_after_the_warm_up_and_a_fifth_of_the_run")
NO_STOP = ("tests/test_reliability.py::"
           "test_without_stopping_the_guard_judges_the_whole_run_by_its_best_dev_score")
GUARD_FLAG = ("tests/test_scratch.py::"
              "test_the_collapse_guard_stops_a_run_at_chance_unless_told_to_train_it_to_the_end")
WORD = "tests/test_word_attack.py"
RESUME = ("tests/test_reliability.py::"
          "test_resuming_an_attack_with_other_settings_sample_or_model_is_refused")
TRAIN_RESUME = ("tests/test_reliability.py::"
                "test_freeat_interrupted_twice_in_the_middle_of_a_replayed_minibatch_resumes_exactly")
BEST_RESUME = ("tests/test_reliability.py::"
               "test_a_resume_after_the_best_evaluation_keeps_the_best_model")
BEST_TIE = ("tests/test_reliability.py::"
            "test_the_best_model_is_replaced_only_by_a_strictly_better_score")


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to src/advembed
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant("guard-flag-outlives-its-step", "training/guard.py",
           "            self._step, self._bad_loss = step, False",
           "            self._step = step", ("tests/test_reliability.py::"
                                               "test_a_step_the_fp16_scaler_skipped_does_not_skip_the_next_one",)),
    # --- the 12 survivors of the review that opened issue 18 -------------------------------
    Mutant("freelb-skips-projection", "methods/freelb.py",
           "mask,\n                            s.epsilon, s.norm)\n        return total",
           "mask,\n                            0.0, s.norm)\n        return total", (EQ, ADV)),
    Mutant("l2-pgd-steps-along-sign", "adversaries.py",
           "project(delta + self.alpha * direction(grad, mask, self.norm)",
           "project(delta + self.alpha * direction(grad, mask, \"linf\")", (EQ, ADV)),
    Mutant("smart-kl-over-padded-targets", "losses.py",
           "return divergence.mean() if positions is None else divergence[positions].mean()",
           "return divergence.mean()", (MT,)),
    Mutant("freeat-carries-a-nan-delta", "methods/freeat.py",
           "self.delta = torch.zeros_like(self.delta)", "pass", ("tests/test_reliability.py",)),
    Mutant("memory-bank-takes-nan-rows", "objectives/carl.py",
           "finite = torch.isfinite(values.detach()).all(-1).cpu()",
           "finite = torch.ones(values.shape[0], dtype=torch.bool)",
           ("tests/test_reliability.py",)),
    Mutant("warm-up-in-micro-batches", "methods/base.py",
           'return self.optimizer_steps_done < getattr(self.settings, "warmup_steps", 0)',
           'return self.steps_done < getattr(self.settings, "warmup_steps", 0)', (DIST,)),
    Mutant("smart-one-sided-kl", "methods/smart.py",
           "            symmetric_kl(perturbed_logits, clean_logits.detach(), positions)\n",
           "            (torch.softmax(clean_logits.detach().float(), -1) * (torch.log_softmax("
           "clean_logits.detach().float(), -1) - torch.log_softmax(perturbed_logits.float(), -1)"
           ")).sum(-1).mean()\n", (EQ, ADV)),
    Mutant("smart-descends", "methods/smart.py",
           "delta = project(delta + s.step_size * step, mask",
           "delta = project(delta - s.step_size * step, mask", (EQ, ADV)),
    Mutant("trainer-resume-skips-method-state", "training/checkpoints.py",
           "            self.resume_state(Path(resume_from_checkpoint))", "            pass",
           ("tests/test_reliability.py::test_trainer_train_resume_from_checkpoint_restores_the_"
            "methods_state", "tests/test_reliability.py::test_an_interrupted_run_resumes_to_the"
            "_same_final_metrics")),
    Mutant("freelb-same-dropout-ignored", "methods/freelb.py",
           "seed = int(torch.randint(2**62, ())) if s.same_dropout else None", "seed = None",
           (ADV,)),
    Mutant("smart-linf-step-is-sign", "methods/smart.py",
           'step = (max_normalized(grad, mask) if s.norm == "linf"',
           'step = (direction(grad, mask, "linf") if s.norm == "linf"', (EQ,)),
    Mutant("smart-linf-step-over-the-example", "perturbation.py",
           "return grad / grad.abs().amax(-1, keepdim=True).clamp_min(_TINY)",
           "return grad / grad.abs().amax((-2, -1), keepdim=True).clamp_min(_TINY)", (EQ,)),
    Mutant("smart-default-norm-l2", "methods/smart.py",
           'norm: str = setting("linf", NORM', 'norm: str = setting("l2", NORM', (EQ,)),
    Mutant("carl-momentum-flipped", "objectives/carl.py",
           "self.momentum * old +\n                          (1 - self.momentum) * values",
           "(1 - self.momentum) * old +\n                          self.momentum * values",
           (EQ, OBJ)),
    Mutant("carl-banks-swapped", "objectives/carl.py",
           'l_a = self._direction("a", adversarial, clean, from_orig.to(clean.dtype))',
           'l_a = self._direction("a", adversarial, clean, from_adv.to(clean.dtype))', (EQ, OBJ)),
    Mutant("carl-positive-in-denominator-by-default", "objectives/carl.py",
           "include_positive: bool = setting(False,", "include_positive: bool = setting(True,",
           (EQ, OBJ)),
    Mutant("atcl-tau-ignored", "objectives/atcl.py",
           "positive_score = (a * p).sum(-1) / tau\n"
           "    negative_scores = torch.einsum(\"kd,knd->kn\", a, negatives) / tau",
           "positive_score = (a * p).sum(-1)\n"
           "    negative_scores = torch.einsum(\"kd,knd->kn\", a, negatives)", (EQ, OBJ)),
    Mutant("atcl-dot-instead-of-cosine", "objectives/atcl.py",
           "a = F.normalize(anchor.float(), dim=-1)\n"
           "    p = F.normalize(positive.float(), dim=-1)\n"
           "    negatives = F.normalize(pool.float(), dim=-1)[negative_index]",
           "a = anchor.float()\n    p = positive.float()\n"
           "    negatives = pool.float()[negative_index]", (EQ, OBJ)),
    Mutant("vaa-attacks-gold-label", "evaluation/vulnerability.py",
           "target = dict(batch, labels=predicted)", "target = dict(batch, labels=gold)",
           (EQ, ROB)),
    Mutant("padding-mask-all-ones", "adapter.py",
           'attention = inputs.get("attention_mask")', "attention = None", (EQ, ADV)),
    Mutant("objective-term-scaled-by-passes", "methods/base.py",
           "return adversarial, weighted * scale + term",
           "return adversarial, (weighted + term) * scale", (EQ,)),
    # --- more equations --------------------------------------------------------------------
    Mutant("fgm-direction-sign", "adversaries.py",
           "step = delta0 + self.epsilon * direction(grad, mask, self.norm)",
           "step = delta0 + self.epsilon * direction(grad, mask, \"linf\")", (ADV, OBJ)),
    Mutant("fgm-descends", "adversaries.py",
           "step = delta0 + self.epsilon * direction(grad, mask, self.norm)",
           "step = delta0 - self.epsilon * direction(grad, mask, self.norm)", (ADV, OBJ)),
    Mutant("freelb-loss-not-divided-by-k", "methods/freelb.py",
           "loss = outer.forward(inputs, delta).loss / s.steps",
           "loss = outer.forward(inputs, delta).loss", (ADV, EQ)),
    Mutant("random-init-ignores-length", "perturbation.py",
           "return noise * (magnitude / (lengths * like.shape[-1]).sqrt())",
           "return noise * (magnitude / like.shape[-1] ** 0.5)", (ADV, EQ)),
    Mutant("l2-projection-inverted", "perturbation.py",
           "epsilon / size.clamp_min(_TINY)", "size / epsilon", (ADV, EQ)),
    Mutant("symmetric-kl-one-way", "losses.py",
           "positions) + kl_divergence(logits_q, logits_p,",
           "positions) * 2 + 0 * kl_divergence(logits_q, logits_p,", (ADV, EQ)),
    Mutant("rar-keeps-special-tokens", "objectives/rar.py",
           "mask = mask & ~torch.isin(ids, special)", "mask = mask", (OBJ,)),
    Mutant("carl-nce-drops-noise-ratio", "objectives/carl.py",
           "shift = log_z + math.log(negatives.shape[1] / num_data)", "shift = log_z", (OBJ,)),
    Mutant("yopo-inner-update-without-adjoint", "methods/yopo.py",
           "torch.autograd.grad((h0 * adjoint).sum(), delta)",
           "torch.autograd.grad(h0.sum(), delta)", (ADV, EQ)),
    Mutant("clean-weight-ignored", "methods/gradient.py",
           "call_backward(backward, clean_weight * clean.loss,",
           "call_backward(backward, clean.loss,", (ADV, EQ)),
    Mutant("pgd-accuracy-not-cumulative", "evaluation/robustness.py",
           "broken |= outcome.wrong", "broken = outcome.wrong", (ROB, EQ)),
    Mutant("vulnerability-f2-on-adversarial-argmax", "evaluation/vulnerability.py",
           "f2 = -log_psi.gather(-1, index.unsqueeze(-1)).squeeze(-1)",
           "f2 = -log_psi.max(-1).values", (ROB, EQ)),
    Mutant("token-level-accumulation-by-steps", "training/trainer.py",
           "share = self.task.count_items(inputs) / num_items_in_batch",
           "share = 1.0 / self.current_gradient_accumulation_steps", (TASKS,)),
    Mutant("carl-banks-not-gathered-under-ddp", "objectives/carl.py",
           "self.remember(gather_rows(index.to(clean.device)), gather_rows(clean),\n"
           "                      gather_rows(adversarial))",
           "self.remember(index, clean, adversarial)", (DIST,)),
    Mutant("token-level-share-not-times-processes", "training/trainer.py",
           "share = share * self.accelerator.num_processes", "share = share", (DIST,)),
    Mutant("sequence-level-accumulation-unscaled", "training/trainer.py",
           "return 1.0 / self.current_gradient_accumulation_steps", "return 1.0", (DIST,)),
    Mutant("translation-eval-loss-by-sentences", "tasks/translation.py",
           'scores["loss"] = float(totals[0] / totals[1])',
           'scores["loss"] = float((torch.as_tensor(stats).double()[:, 0]'
           ' / torch.as_tensor(stats).double()[:, 1]).mean())', (MT,)),
    Mutant("translation-eval-nll-shifted", "tasks/base.py",
           "nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels,",
           "nll = torch.nn.functional.cross_entropy(logits.float().roll(1, 1).transpose(1, 2),"
           " labels,", (MT, LM)),
    # --- VAA (paper 002) ------------------------------------------------------------------
    Mutant("vaa-fgsm-attacks-another-label", "vaa/features.py",
           "        return logits.argmax(-1)",
           "        return logits.argmin(-1)", (VAA,)),
    Mutant("vaa-threshold-on-the-other-class", "vaa/features.py",
           "softmax(-1)[..., 1] >= threshold", "softmax(-1)[..., 0] >= threshold", (VAA,)),
    Mutant("vaa-threshold-ignored", "vaa/features.py",
           "predicted = predicted_labels(logits.detach(), threshold)",
           "predicted = predicted_labels(logits.detach(), None)", (VAA,)),
    Mutant("vaa-model-drops-its-threshold", "vaa/model.py",
           'threshold=getattr(self.config, "vaa_threshold", None))', "threshold=None)", (QA,)),
    Mutant("vaa-base-run-threshold-not-read", "training/base_run.py",
           'threshold=run_config.get("qa_threshold"))', "threshold=None)", (QA,)),
    Mutant("vaa-a-minus-is-the-logits", "vaa/features.py",
           "    return logits, seen[-1]", "    return logits, logits", (VAA,)),
    Mutant("vaa-a-minus-averages-the-positions", "vaa/features.py",
           "into.append(features[:, position] if features.dim() == 3 else features)",
           "into.append(features.mean(1) if features.dim() == 3 else features)", (VAA,)),
    Mutant("vaa-delta-v-flipped", "vaa/features.py",
           "torch.cat([v1, v2, v1 - v2], dim=-1)", "torch.cat([v1, v2, v2 - v1], dim=-1)",
           (VAA,)),
    Mutant("vaa-l2-norm-per-token", "vaa/features.py",
           'direction(grad.detach(), mask, norm, "example")',
           'direction(grad.detach(), mask, norm, "token")', (VAA,)),
    Mutant("vaa-attack-skips-model-a", "vaa/model.py",
           "embeds_a = embeds_a + (inputs_embeds - self.get_input_embeddings()(input_ids))",
           "embeds_a = embeds_a", (VAA,)),
    Mutant("vaa-model-a-keeps-dropout", "vaa/model.py",
           "self.model_a.eval()  # A is frozen", "pass  # A is frozen", (VAA,)),
    Mutant("vaa-model-a-trained", "vaa/model.py",
           "self.model_a.requires_grad_(False)", "self.model_a.requires_grad_(True)", (VAA,)),
    Mutant("vaa-projection-not-zero", "vaa/model.py",
           "torch.nn.init.zeros_(module.weight)", "pass", (VAA,)),
    Mutant("vaa-hidden-states-drop-first-token", "vaa/model.py",
           "torch.cat([h[:, :1], h[:, 2:]], dim=1)", "h[:, 1:]", (VAA,)),
    # --- VDA (paper 003) ------------------------------------------------------------------
    Mutant("vda-noise-std-is-the-variance", "vda/mixture.py",
           "scores = scores + noise * variance ** 0.5", "scores = scores + noise * variance",
           (VDA,)),
    Mutant("vda-noise-on-probabilities-by-default", "vda/mixture.py",
           'scores = log_p if noise_on == "logits" else log_p.exp()',
           "scores = log_p.exp()", (VDA,)),
    Mutant("vda-topk-after-the-noise", "vda/mixture.py",
           "        ids = logits.topk(top_k, dim=-1).indices",
           "        ids = (logits + torch.randn_like(logits)).topk(top_k, dim=-1).indices",
           (VDA,)),
    Mutant("vda-special-tokens-replaced", "vda/mixture.py",
           "keep = ~torch.isin(input_ids, special_ids.to(input_ids.device))",
           "keep = torch.ones_like(input_ids, dtype=torch.bool)", (VDA,)),
    Mutant("vda-mixture-not-renormalised", "vda/mixture.py",
           "    weights = F.softmax(scores, dim=-1)",
           "    weights = scores.exp()", (VDA,)),
    Mutant("vda-samples-summed-not-averaged", "vda/augmenter.py",
           "return s.weight / s.samples * total", "return s.weight * total", (VDA,)),
    Mutant("vda-ce-on-the-clean-pass", "vda/augmenter.py",
           'divergence = F.cross_entropy(virtual.logits.float(), inputs["labels"])',
           'divergence = F.cross_entropy(clean_logits.float(), inputs["labels"])', (VDA,)),
    Mutant("vda-mixture-detached-from-the-embeddings", "vda/augmenter.py",
           "self.substitutes(inputs, logits).embed(adapter.word_embeddings.weight, original)",
           "self.substitutes(inputs, logits).embed(adapter.word_embeddings.weight.detach(), "
           "original)", (VDA,)),
    Mutant("vda-clean-prediction-detached", "vda/augmenter.py",
           "divergence = symmetric_kl(clean_logits, virtual.logits,",
           "divergence = symmetric_kl(clean_logits.detach(), virtual.logits,", (VDA,)),
    Mutant("vda-kept-positions-detached", "vda/augmenter.py",
           "original = adapter.embed(inputs)", "original = adapter.embed(inputs).detach()",
           (VDA,)),
    Mutant("vda-dense-mixture-detached", "vda/mixture.py",
           "mixed = self.weights.to(weight.dtype) @ weight",
           "mixed = self.weights.to(weight.dtype) @ weight.detach()", (VDA,)),
    Mutant("vda-sample-form-takes-the-argmax", "vda/mixture.py",
           "pick = torch.multinomial(flat.cpu(), 1, generator=generator).to(ids.device)",
           "pick = flat.argmax(-1, keepdim=True).to(ids.device)", (VDA,)),
    Mutant("vda-attention-mask-ignored", "vda/mixture.py",
           "keep = keep & attention_mask.bool()", "keep = keep", (VDA,)),
    Mutant("vda-mlm-keeps-dropout", "vda/augmenter.py",
           "self.mlm = mlm.eval().requires_grad_(False)",
           "self.mlm = mlm.train().requires_grad_(False)", (VDA,)),
    # --- language modelling and ATCL at token level (paper 004), QA matching (paper 000) ----
    Mutant("lm-perplexity-per-sequence", "tasks/lm.py",
           "        totals = torch.as_tensor(eval_prediction.predictions).double().sum(0)\n"
           "        return {\"perplexity\": math.exp(float(totals[0] / totals[1]))}",
           "        rows = torch.as_tensor(eval_prediction.predictions).double()\n"
           "        return {\"perplexity\": math.exp(float((rows[:, 0] / rows[:, 1]).mean()))}",
           (LM,)),
    Mutant("lm-nll-counts-padding", "tasks/base.py",
           "    count = (labels != -100).sum(1).to(nll.dtype)",
           "    count = torch.full_like(nll.sum(1), labels.shape[1])", (LM,)),
    Mutant("atcl-token-anchor-is-its-own-negative", "objectives/atcl.py",
           "    scores[torch.arange(count, device=anchor.device), own] = 2.0  # never picked\n",
           "", (LM,)),
    Mutant("atcl-token-anchor-at-the-first-token", "objectives/atcl.py",
           "clean[rows, position[rows]], adversarial[rows, position[rows]]",
           "clean[rows, 0], adversarial[rows, 0]", (LM,)),
    Mutant("atcl-token-term-without-beta", "objectives/atcl.py",
           "return s.beta * self._token_level_loss(context)",
           "return self._token_level_loss(context)", (LM,)),
    Mutant("atcl-alpha-ignored", "objectives/atcl.py",
           "self.adversarial_weight = self.settings.alpha", "self.adversarial_weight = 1.0",
           (OBJ,)),
    Mutant("inner-gradient-unscaled-under-fp16", "methods/gradient.py",
           "return inner.forward(inputs, delta).loss * self.inner_loss_scale",
           "return inner.forward(inputs, delta).loss", ("tests/test_adversaries.py",)),
    Mutant("adversarial-weight-dropped-in-the-step", "methods/base.py",
           "weighted = self.objective.adversarial_weight * adversarial.loss",
           "weighted = adversarial.loss", (OBJ,)),
    Mutant("atcl-always-the-first-word", "objectives/atcl.py",
           "scores = scores.masked_fill(~candidates, -1.0)", "scores = candidates.float()",
           (OBJ,)),
    Mutant("atcl-anchor-among-too-few-negatives", "objectives/atcl.py",
           "n = min(num_negatives, size - 1)", "n = min(num_negatives, size)", (OBJ,)),
    Mutant("atcl-sentence-anchor-is-the-adversarial-state", "objectives/atcl.py",
           "token_contrastive_loss(clean[rows], adversarial[rows], clean, rows,",
           "token_contrastive_loss(adversarial[rows], clean[rows], clean, rows,", (OBJ,)),
    Mutant("atcl-unperturbed-sentences-are-anchors", "objectives/atcl.py",
           "rows = (self.chosen[1].nonzero().squeeze(1) if self.chosen is not None",
           "rows = (torch.arange(clean.shape[0]) if self.chosen is not None", (OBJ,)),
    Mutant("atcl-byte-level-pieces-read-raw", "words.py",
           'text = _byte_level_text(token) if marker == "Ġ" else token',
           "text = token", (OBJ,)),
    Mutant("atcl-block-edges-kept", "words.py",
           "        after_boundary[:, 0] = False\n        followed_by_piece[:, -1] = True",
           "        pass", (OBJ,)),
    Mutant("bleu-floor-smoothing", "tasks/translation.py",
           "bleu, chrf = sacrebleu.BLEU(), sacrebleu.CHRF()",
           "bleu, chrf = sacrebleu.BLEU(smooth_method=\"floor\"), sacrebleu.CHRF()", (MT,)),
    Mutant("qa-threshold-retuned-on-test", "tasks/qa_matching.py",
           "        if self._split == \"dev\":\n", "        if True:\n", (QA,)),
    Mutant("qa-f1-of-the-wrong-class", "tasks/qa_matching.py",
           "average=\"binary\", pos_label=1", "average=\"binary\", pos_label=0", (QA,)),
    Mutant("vda-augment-term-dropped", "methods/base.py",
           "                loss = loss + self._augment_step(model, inputs, backward)",
           "                pass", (VDA,)),
    # --- translation, its data and paper 004's probes (issue 15), bible-para (issue 14) -----
    Mutant("bleu-against-the-hypotheses", "tasks/translation.py",
           "self.references(eval_prediction.label_ids))",
           "self.decode(predictions))", (MT,)),
    Mutant("parallel-dev-keeps-train-sources", "data/parallel.py",
           "source_key(source) not in earlier and (", "True and (", (MT,)),
    Mutant("parallel-untranslated-kept", "data/parallel.py",
           "if source[ident] != target[ident]:", "if True:", (MT,)),
    Mutant("atcl-states-of-the-decoder", "objectives/base.py",
           "return encoder if encoder is not None else outputs.hidden_states[-1]",
           "return outputs.decoder_hidden_states[-1] if encoder is not None else "
           "outputs.hidden_states[-1]", (MT,)),
    Mutant("yopo-identity-layer-frozen", "adapter.py",
           "    if block is None:  # the identity first layer\n        return embeds",
           "    if block is None:  # the identity first layer\n        return embeds.detach()",
           (MT,)),
    Mutant("nearest-words-by-cosine", "evaluation/probes.py",
           "distance = (weights - weights[ids[0]]).norm(dim=1)",
           "distance = -torch.nn.functional.cosine_similarity(weights, weights[ids[0]], dim=1)",
           (MT,)),
    Mutant("probe-perturbs-the-first-word", "evaluation/probes.py",
           "return int(positions[-1])", "return int(positions[0])", (MT,)),
    Mutant("bible-book-heading-as-a-verse", "data/bible.py",
           "            end -= 1  # the next book's heading entry", "            pass", (BIBLE,)),
    Mutant("bible-negative-least-similar", "data/bible.py",
           "other = max(near,", "other = min(near,", (BIBLE,)),
    # --- the six survivors of the review of CARL's banks, RAR's head, drift and VAA's attack
    Mutant("carl-adv-bank-gets-clean-rows", "objectives/carl.py",
           "self.adv.update(rows[finite], adversarial[finite])",
           "self.adv.update(rows[finite], clean[finite])", (OBJ,)),
    Mutant("rar-head-without-gelu", "objectives/rar.py",
           "hidden = self.dense(F.gelu(self.norm(states)))",
           "hidden = self.dense(self.norm(states))", (OBJ,)),
    Mutant("drift-cosine-of-the-logits", "evaluation/robustness.py",
           "cosine=F.cosine_similarity(r_clean, r_adv, dim=-1)",
           "cosine=F.cosine_similarity(clean.logits.float(), attacked.logits.float(), dim=-1)",
           (ROB,)),
    Mutant("drift-euclidean-squared", "evaluation/robustness.py",
           "distance=(r_clean - r_adv).norm(dim=-1))",
           "distance=(r_clean - r_adv).norm(dim=-1) ** 2)", (ROB,)),
    Mutant("vulnerability-auc-flipped", "evaluation/vulnerability.py",
           "float(roc_auc_score(labels, scores))", "float(roc_auc_score(labels, -scores))",
           (ROB,)),
    Mutant("vulnerability-linf-runs-l2", "evaluation/vulnerability.py",
           'if settings.norm == "linf"', "if False", (ROB,)),
    # --- the collapse guard (session 27: it stopped healthy ESIM runs after epoch 1) --------
    Mutant("collapse-guard-judges-the-first-epoch", "training/callbacks.py",
           "return max(args.get_warmup_steps(state.max_steps),\n"
           "                   math.ceil(JUDGE_AFTER * state.max_steps))", "return 0", (GUARD,)),
    Mutant("collapse-guard-ignores-the-warm-up", "training/callbacks.py",
           "return max(args.get_warmup_steps(state.max_steps),\n"
           "                   math.ceil(JUDGE_AFTER * state.max_steps))",
           "return math.ceil(JUDGE_AFTER * state.max_steps)", (GUARD,)),
    Mutant("collapse-guard-judges-every-evaluation", "training/callbacks.py",
           "judged == 1 and", "judged >= 1 and", (GUARD,)),
    Mutant("collapse-guard-without-stopping-judges-the-last-score", "training/callbacks.py",
           "best = max(values) if self.greater_is_better else min(values)",
           "best = values[-1]", (NO_STOP,)),
    Mutant("collapse-guard-flag-ignored", "training/run.py",
           "stop=config.collapse_guard)", "stop=True)", (GUARD_FLAG,)),
    # --- the twelve survivors of the review of the adversaries (FreeAT, YOPO, the random
    # start, FGSM/FGM's projection, SMART's ε, FreeLB's clean pass) -------------------------
    Mutant("freeat-delta-descends", "methods/freeat.py",
           "delta.detach() + s.epsilon", "delta.detach() - s.epsilon", (ADV,)),
    Mutant("freeat-half-step", "methods/freeat.py",
           "+ s.epsilon * direction(grad, mask, s.norm)",
           "+ 0.5 * s.epsilon * direction(grad, mask, s.norm)", (ADV,)),
    Mutant("freeat-delta-carried-to-the-next-batch", "methods/freeat.py",
           "if self.replay_index % self.replays == 0 or self.delta is None:",
           "if self.delta is None:", (ADV,)),
    Mutant("yopo-pass-not-divided-by-m", "methods/yopo.py",
           "loss = outer.forward(inputs, delta).loss / s.outer_steps",
           "loss = outer.forward(inputs, delta).loss", (ADV,)),
    Mutant("yopo-last-pass-at-full-weight", "methods/yopo.py",
           "1.0 / s.outer_steps)", "1.0)", (ADV,)),
    Mutant("yopo-inner-updates-unprojected", "methods/yopo.py",
           "direction(grad, mask, s.norm),\n"
           "                                mask, s.epsilon, s.norm)",
           "direction(grad, mask, s.norm),\n                                mask, 0.0, s.norm)",
           (ADV,)),
    Mutant("random-init-one-sided", "perturbation.py",
           "noise = (noise * 2 - 1) * mask", "noise = noise * mask", (ADV,)),
    Mutant("random-init-linf-doubled", "perturbation.py",
           "return noise * magnitude\n", "return noise * magnitude * 2\n", (ADV,)),
    Mutant("fgsm-random-start-unprojected", "adversaries.py",
           'return project(step, mask, self.epsilon, "linf").detach()', "return step.detach()",
           (ADV,)),
    Mutant("fgm-random-start-unprojected", "adversaries.py",
           "return project(step, mask, self.epsilon, self.norm).detach()",
           "return step.detach()", (ADV,)),
    Mutant("smart-projection-per-example", "methods/smart.py",
           's.epsilon, s.norm,\n                            "token")',
           's.epsilon, s.norm,\n                            "example")', (ADV,)),
    Mutant("freelb-clean-pass-without-gradient", "methods/freelb.py",
           "call_backward(backward, clean.loss, retain=self._needs_clean)",
           "call_backward(backward, 0 * clean.loss, retain=self._needs_clean)", (ADV,)),
    # --- the six survivors of the review of QA matching's threshold and ESIM ----------------
    Mutant("qa-threshold-never-calls-everything-an-answer", "tasks/qa_matching.py",
           "(values[:-1] + values[1:]) / 2, [0.0]])", "(values[:-1] + values[1:]) / 2])",
           (QA,)),
    Mutant("qa-threshold-ties-not-answers", "tasks/qa_matching.py",
           "predicted = (probability >= threshold)", "predicted = (probability > threshold)",
           (QA,)),
    Mutant("esim-enhancement-sum-not-product", "esim.py",
           "x - aligned, x * aligned]", "x - aligned, x + aligned]", (ESIM,)),
    Mutant("esim-first-sentence-holds-the-second", "esim.py",
           "self._pair(self.dropout(embeds), mask & ~types, second)",
           "self._pair(self.dropout(embeds), mask, second)", (ESIM,)),
    Mutant("esim-v-b-ignored", "esim.py",
           "torch.cat([va, vb], -1)", "torch.cat([va, va], -1)", (ESIM,)),
    Mutant("esim-projection-without-relu", "esim.py",
           "self.projection = nn.Sequential(nn.Linear(8 * h, h), nn.ReLU())",
           "self.projection = nn.Sequential(nn.Linear(8 * h, h))", (ESIM,)),
    # --- the five survivors of the review of the word-attack path ----------------------------
    Mutant("word-attack-wrapper-ignores-its-temperature", "evaluation/word_attack.py",
           "temperature=self.temperature, decide=self.decide)",
           "temperature=1.0, decide=self.decide)",
           (f"{WORD}::test_the_attacked_wrapper_scores_softmax_of_the_logits_over_its_temperature",)),
    Mutant("word-attack-every-flip-confirmed", "evaluation/word_attack.py",
           'record["flip_confirmed"] = record["rescored_prediction"] != record["label"]',
           'record["flip_confirmed"] = True',
           (f"{WORD}::test_a_rescored_text_that_keeps_the_gold_prediction_is_not_a_confirmed_flip",)),
    Mutant("word-attack-sample-ignores-its-seed", "evaluation/runs.py",
           "manual_seed(seed)", "manual_seed(0)",
           (f"{WORD}::test_the_attack_sample_follows_its_seed",)),
    Mutant("word-attack-headline-the-highest-accuracy", "evaluation/attack.py",
           "worst = min(by_temperature,", "worst = max(by_temperature,",
           (f"{WORD}::test_the_rescaled_headline_is_the_lowest_accuracy_over_the_temperatures",)),
    Mutant("word-attack-resume-accepts-other-settings", "evaluation/record_log.py",
           "if found != header:", "if False:", (RESUME,)),
    # --- exact resume of a training run (the review of the resume test) ---------------------
    Mutant("resume-freeat-delta-not-restored", "methods/freeat.py",
           'self.delta, self.replay_index = state["delta"], int(state["replay_index"])',
           'self.replay_index = int(state["replay_index"])', (TRAIN_RESUME,)),
    Mutant("resume-replays-a-partial-minibatch-whole", "training/replay.py",
           "self.replays, self.replays - partial)", "self.replays, self.replays)",
           (TRAIN_RESUME,)),
    Mutant("resume-method-state-not-restored", "training/checkpoints.py",
           'if self.method is not None and state["method"] is not None:', "if False:",
           (TRAIN_RESUME,)),
    Mutant("resume-guard-state-not-restored", "training/checkpoints.py",
           'self.guard.load_state_dict(state["guard"])', "pass", (BEST_RESUME,)),
    Mutant("resume-best-json-ignored", "training/callbacks.py",
           'self.best = json.loads(record.read_text())["value"]', "self.best = None",
           (BEST_RESUME, BEST_TIE)),
    Mutant("resume-best-replaced-by-an-equal-score", "training/callbacks.py",
           "return value > self.best if self.greater_is_better",
           "return value >= self.best if self.greater_is_better", (BEST_TIE,)),
    # session 41
    Mutant("qa-decision-shift-sign", "tasks/qa_matching.py",
           "        margin = z[:, 1] - z[:, 0] - torch.logit(",
           "        margin = z[:, 1] - z[:, 0] + torch.logit(",
           (QA + "::test_decision_logits_put_the_dev_threshold_at_the_argmax",)),
    Mutant("qa-decision-tie-not-an-answer", "tasks/qa_matching.py",
           "        margin = torch.where(answer, margin.clamp(min=1e-12), "
           "margin.clamp(max=-1e-12))",
           "        pass",
           (QA + "::test_decision_logits_put_the_dev_threshold_at_the_argmax",)),
    Mutant("qa-attack-counts-by-argmax", "evaluation/robustness.py",
           "    decided = task.decision_logits(attacked.logits).argmax(-1)",
           "    decided = attacked.logits.argmax(-1)",
           (QA + "::test_attacks_count_a_pair_correct_by_the_runs_threshold",)),
    Mutant("carl-bank-last-write-wins", "objectives/carl.py",
           "        index, values = index[first], values[first]", "        pass",
           (OBJ + "::test_a_row_given_twice_in_one_update_takes_its_first_value",)),
    Mutant("pair-budget-over-both-sentences", "evaluation/word_constraints.py",
           "            n = min(self._words(transformed_text), self._words(reference_text))",
           "            n = min(len(transformed_text.words), len(reference_text.words))",
           (WORD + "::test_on_a_pair_the_word_budget_counts_the_attacked_second_sentence_only",)),
    Mutant("resumed-loss-sum-not-restored", "training/checkpoints.py",
           "        self.trainer._total_loss_scalar = self.loss_sum", "        pass",
           ("tests/test_reliability.py::test_an_interrupted_run_resumes_to_the_same_final_metrics",
            "tests/test_reliability.py::"
            "test_a_run_resumed_from_its_final_checkpoint_reports_the_whole_runs_training_loss")),
    Mutant("help-qa-question-key-keeps-case", "data/help_qa.py",
           "    return \" \".join(re.sub(r\"[\\W_]+\", \" \", heading.casefold()).split())",
           "    return \" \".join(re.sub(r\"[\\W_]+\", \" \", heading).split())",
           ("tests/test_data_pairs.py",)),
    Mutant("help-qa-same-page-sections-not-merged", "data/help_qa.py",
           "            merged.setdefault(key, (heading, []))[1].extend(paragraphs)",
           "            merged.setdefault(heading, (heading, []))[1].extend(paragraphs)",
           ("tests/test_data_pairs.py",)),
    Mutant("bbc-repeated-story-kept", "data/pairs.py",
           "        if lines and not seen & set(lines[:2]):", "        if lines:",
           ("tests/test_data_pairs.py",)),
    Mutant("hull-mixes-invalid-entries", "hull.py",
           "    weights = hull_weights(logits, valid).to(neighbour_embeds.dtype)",
           "    weights = torch.softmax(logits, dim=-1).to(neighbour_embeds.dtype)",
           ("tests/test_ascc.py",)),
    Mutant("hull-entropy-over-every-position", "hull.py",
           "    return entropy[open_positions].mean()", "    return entropy.mean()",
           ("tests/test_ascc.py",)),
    Mutant("hull-search-rewards-entropy", "hull.py",
           "        objective = objective - sparsity * hull_entropy(logits, valid)",
           "        objective = objective + sparsity * hull_entropy(logits, valid)",
           ("tests/test_ascc.py",)),
    Mutant("ascc-kl-reversed", "methods/ascc.py",
           "kl_divergence(clean.logits, perturbed.logits, positions)",
           "kl_divergence(perturbed.logits, clean.logits, positions)",
           ("tests/test_ascc.py",)),
    Mutant("ascc-synonyms-inside-split-words", "hull.py",
           "        words = complete_word_mask(input_ids, attention, self.flags,\n"
           "                                   cut_edges=cut_edges) & allowed",
           "        words = attention.bool() & allowed", ("tests/test_ascc.py",)),
    Mutant("hull-piece-vertex-counts-padding", "hull.py",
           "    return total / (ids >= 0).sum(-1, keepdim=True).clamp(min=1).to(total.dtype)",
           "    return total / ids.size(-1)", ("tests/test_ascc.py",)),
    Mutant("hull-piece-vertex-first-piece-only", "hull.py",
           "        total = embeds if total is None else total + embeds",
           "        total = embeds if total is None else total", ("tests/test_ascc.py",)),
    Mutant("hull-bpe-pieces-without-a-space", "hull.py",
           'flags.words, " " if byte_level else ""', 'flags.words, ""',
           ("tests/test_ascc.py",)),
    Mutant("hull-bpe-bare-words-get-none", "hull.py",
           '    rows.update(words.rows(flags.bare, "", False))', "",
           ("tests/test_ascc.py",)),
    Mutant("words-bpe-punctuation-starts-a-word", "words.py",
           "            is_start, is_cont = is_start and wordish, not is_start and wordish",
           "            is_cont = not is_start and wordish", (OBJ, "tests/test_ascc.py")),
    Mutant("resume-numbers-compared-exactly", "training/resume.py",
           "        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)",
           "        return a == b", ("tests/test_reliability.py::test_a_preset_run_resumes_"
                                    "despite_the_last_bits_of_its_norm_sized_settings",)),
    Mutant("help-sources-compared-exactly", "data/parallel.py",
           '    return _LOOSE.sub(" ", text.lower()).strip() or text.lower()',
           "    return text", ("tests/test_translation.py",)),
    # --- session 46: a review of VAA and QA matching ----------------------------------------
    Mutant("vaa-l2-norm-over-the-batch", "vaa/features.py",
           'step = epsilon * direction(grad.detach(), mask, norm, "example")',
           'step = epsilon * (direction(grad.detach(), mask, norm, "example") if norm == "linf" '
           'else grad.detach() * mask / (grad.detach() * mask).norm())', (VAA,)),
    Mutant("qa-predict-by-the-argmax", "tasks/qa_matching.py",
           "answered = bool(answer_probability(logits[None])[0] >= self.threshold)",
           "answered = bool(answer_probability(logits[None])[0] >= 0.5)", (QA,)),
    Mutant("vulnerability-predicts-by-the-argmax", "evaluation/vulnerability.py",
           "predicted = task.decision_logits(clean_logits).argmax(-1)",
           "predicted = clean_logits.argmax(-1)", (QA,)),
    Mutant("vulnerability-f2-at-the-argmax", "evaluation/vulnerability.py",
           "index = phi.argmax(-1) if predicted is None else predicted",
           "index = phi.argmax(-1)", (ROB,)),
    Mutant("qa-threshold-counts-the-ties-below", "tasks/qa_matching.py",
           'below = np.searchsorted(ascending.astype(np.float64), candidates, side="left")',
           'below = np.searchsorted(ascending.astype(np.float64), candidates, side="right")',
           (QA,)),
    Mutant("qa-threshold-ties-go-low", "tasks/qa_matching.py",
           "best = np.lexsort((candidates, -np.abs(candidates - 0.5), f1))[-1]",
           "best = np.lexsort((-candidates, -np.abs(candidates - 0.5), f1))[-1]", (QA,)),
    Mutant("rar-head-layernorm-before-gelu", "objectives/rar.py",
           "hidden = self.norm(F.gelu(self.dense(states)))",
           "hidden = F.gelu(self.norm(self.dense(states)))", (OBJ,)),
    Mutant("resume-ignores-what-older-runs-did", "training/resume.py",
           "                started = started | {name: legacy}  # what the run did before",
           "                pass  # what the run did before", ("tests/test_reliability.py::"
                                                          "test_a_run_from_before_a_setting_"
                                                          "with_another_old_behaviour_resumes_"
                                                          "only_as_that",)),

    # --- session 46: a review of CARL and RAR ----------------------------------------------
    Mutant("carl-clean-representation-detached", "objectives/carl.py",
           "clean = self._prepare(self.representation(context.clean, context.inputs))",
           "clean = self._prepare(self.representation(context.clean, context.inputs)).detach()",
           (EQ, OBJ)),
    Mutant("carl-sum-over-the-batch", "objectives/carl.py",
           "return (torch.logsumexp(negative_scores, dim=1) - positive_score).mean()",
           "return (torch.logsumexp(negative_scores, dim=1) - positive_score).sum()",
           (EQ, OBJ)),
    Mutant("carl-first-rows-negatives-for-all", "objectives/carl.py",
           "from_orig = self.orig[negatives.flatten()].view(*negatives.shape, -1).to(device)",
           "from_orig = self.orig[negatives[:1].expand_as(negatives).flatten()].view("
           "*negatives.shape, -1).to(device)", (EQ, OBJ)),
    # --- session 46: a review of ATCL and the adversaries ------------------------------------
    Mutant("atcl-negatives-always-the-first-rows", "objectives/atcl.py",
           "scores = torch.rand(count, size, generator=generator).to(anchor.device)",
           "scores = (torch.arange(size, dtype=torch.float) / size).repeat(count, 1).to("
           "anchor.device)", (LM,)),
    Mutant("atcl-token-positive-at-the-previous-position", "objectives/atcl.py",
           "clean[rows, position[rows]], adversarial[rows, position[rows]], clean[real], own,",
           "clean[rows, position[rows]], adversarial[rows, position[rows] - 1], clean[real], "
           "own,", (LM,)),
    Mutant("atcl-token-rows-without-a-word-are-anchors", "objectives/atcl.py",
           "        rows = has_word.nonzero().squeeze(1)\n        flat",
           "        rows = torch.arange(len(has_word), device=has_word.device)\n        flat",
           (LM,)),
    Mutant("yopo-adjoint-kept-from-the-first-pass", "methods/yopo.py",
           "adjoint = block_output.grad.detach()",
           "adjoint = block_output.grad.detach() if j == 0 else adjoint", (ADV,)),
    Mutant("gradient-passes-count-the-clean-pass-twice", "methods/gradient.py",
           "clean = settings.clean_weight > 0 or needs_clean",
           "clean = 1 + needs_clean", (ADV,)),
    # --- session 46: a review of VDA --------------------------------------------------------
    Mutant("vda-literal-form-drops-its-noise", "vda/mixture.py",
           "    if variance > 0:\n        noise = torch.randn(",
           "    if variance > 0 and noise_on == \"logits\":\n        noise = torch.randn(",
           (VDA,)),
    Mutant("vda-argmax-of-the-mlms-own-p", "vda/mixture.py",
           "pick = weights.argmax(-1, keepdim=True)",
           "pick = logits.float().gather(-1, ids).argmax(-1, keepdim=True)", (VDA,)),
    Mutant("vda-sample-from-the-mlms-own-p", "vda/mixture.py",
           "flat = weights.reshape(-1, weights.shape[-1])",
           "flat = logits.float().gather(-1, ids).softmax(-1).reshape(-1, weights.shape[-1])",
           (VDA,)),
    Mutant("vda-unknown-words-kept", "vda/augmenter.py",
           "special_ids = [i for i in tokenizer.all_special_ids if i != tokenizer.unk_token_id]",
           "special_ids = list(tokenizer.all_special_ids)", (VDA,)),
    Mutant("vda-load-path-replaces-special-tokens", "vda/augmenter.py",
           "special_ids = [i for i in tokenizer.all_special_ids if i != tokenizer.unk_token_id]",
           "special_ids = []", (VDA,)),
    Mutant("vda-default-variance-not-the-papers", "vda/augmenter.py",
           'variance: float = setting(1e-2, "--vda-variance"',
           'variance: float = setting(1e-1, "--vda-variance"', (VDA,)),
    Mutant("vda-ce-on-token-level-tasks-not-refused", "vda/augmenter.py",
           "    if vda.loss == \"ce\" and task is not None and task.token_level:",
           "    if False:", (LM,)),
    # --- session 46: a review of the language-modelling and translation tasks ---------------
    Mutant("lm-evaluate-keeps-the-last-batch-only", "tasks/lm.py",
           "                    totals += nll_and_count(",
           "                    totals = nll_and_count(", (LM,)),
    Mutant("translation-best-is-the-lowest-bleu", "tasks/translation.py",
           "    greater_is_better = True", "    greater_is_better = False", (MT,)),
    Mutant("translation-beam-search", "tasks/base.py",
           '"do_sample": False, "num_beams": 1,', '"do_sample": False, "num_beams": 4,', (MT,)),
    Mutant("marian-forces-pad-as-eos", "tasks/translation.py",
           "                                          forced_eos_token_id=None, **common))",
           "                                          **common))", (MT,)),
    Mutant("deepspeed-divides-by-accumulation-again", "training/trainer.py",
           '            return {"scale_wrt_gas": False}', "            return {}", (DIST,)),
    # --- session 46: a review of the attacks and the report ----------------------------------
    Mutant("word-budget-floored", "evaluation/word_constraints.py",
           "return changed <= math.ceil(n * self.max_percent)",
           "return changed <= math.floor(n * self.max_percent)", (WORD,)),
    Mutant("report-rescaled-column-reads-the-plain-figure", "report/columns.py",
           '            ("attack_accuracy_rescaled", "acc rescaled",',
           '            ("attack_accuracy", "acc rescaled",', ("tests/test_report.py",)),
    Mutant("report-ece-column-reads-macro-f1", "tasks/classification.py",
           '                ("test", "ece", "test ECE",',
           '                ("test", "macro_f1", "test ECE",', ("tests/test_report.py",)),
    Mutant("attack-resume-takes-any-log-as-finished", "evaluation/attack.py",
           "todo = [i for i in range(len(examples)) if not log.has(i)]",
           "todo = [] if log.done else list(range(len(examples)))",
           ("tests/test_reliability.py::test_an_attack_resumed_from_part_of_its_records_"
            "attacks_only_the_rest",)),
    Mutant("pgd-radii-in-the-order-given", "evaluation/robustness.py",
           "    epsilons = sorted(settings.epsilon)", "    epsilons = list(settings.epsilon)",
           (ROB,)),
    # --- session 46: a review of the robust preset, ASCC and ADA -----------------------------
    Mutant("ascc-ignores-its-search-settings", "methods/ascc.py",
           "table, valid, steps=s.steps, step_size=s.step_size, sparsity=s.sparsity,",
           "table, valid, steps=1, step_size=2.0, sparsity=0.0,", ("tests/test_ascc.py",)),
    Mutant("ascc-outer-kl-clean-side-detached", "methods/ascc.py",
           "loss = clean.loss + s.weight * kl_divergence(clean.logits, perturbed.logits,",
           "loss = clean.loss + s.weight * kl_divergence(clean.logits.detach(), "
           "perturbed.logits,", ("tests/test_ascc.py",)),
    Mutant("preset-overrides-explicit-flags", "training/run.py",
           "method_options=options | dict(config.method_options))",
           "method_options=dict(config.method_options) | options)", ("tests/test_settings.py",)),
    Mutant("preset-replaces-a-method-given", "cli/train.py",
           "    if preset and options.get(\"method\", preset.method) != preset.method:",
           "    if False:", ("tests/test_settings.py",)),
    Mutant("ada-takes-records-of-held-out-examples", "data/augment.py",
           "        if held_out and original in held_out:", "        if False:",
           ("tests/test_augment.py",)),
    Mutant("ada-sample-not-drawn-with-the-runs-seed", "training/run.py",
           "                         seed=config.seed)", "                         seed=0)",
           ("tests/test_augment.py",)),
    # --- session 46: a review of the data loaders ---------------------------------------------
    Mutant("rt-labels-swapped", "data/named.py",
           'labels = {"rotten": 0, "fresh": 1}', 'labels = {"rotten": 1, "fresh": 0}',
           ("tests/test_data_named.py",)),
    Mutant("thucnews-labels-shifted", "data/chinese.py",
           "examples.append(Example(headline.strip(), index[topic]))",
           "examples.append(Example(headline.strip(), (index[topic] + 1) % 10))",
           ("tests/test_data_chinese.py",)),
    Mutant("bbc-republished-story-kept", "data/named.py",
           "                 for topic, lines in unique_articles(_bbc_texts()))",
           "                 for topic, lines in ((t, [x.strip() for x in text.splitlines() "
           "if x.strip()]) for t, text in _bbc_texts()) if lines)",
           ("tests/test_data_named.py",)),
    Mutant("esim-single-head-without-tanh", "esim.py",
           "self.single_head = nn.Sequential(nn.Linear(4 * h, h), nn.Tanh())",
           "self.single_head = nn.Sequential(nn.Linear(4 * h, h))", (ESIM,)),
    Mutant("esim-vocabulary-keeps-case", "esim.py",
           "    normalizer = normalizers.BertNormalizer(lowercase=True)",
           "    normalizer = normalizers.BertNormalizer(lowercase=False)", (ESIM,)),
    Mutant("esim-vocabulary-uncapped", "esim.py",
           "[w for w, _ in counts.most_common(max_vocab)]", "[w for w, _ in counts.most_common()]",
           (ESIM,)),
    Mutant("scratch-vocabulary-ignores-second-sentences", "tasks/classification.py",
           'texts = [t for e in data.splits["train"] for t in (e.text, e.text_pair) if t]',
           'texts = [e.text for e in data.splits["train"]]', ("tests/test_scratch.py",)),

    # session 50's review findings
    Mutant("carl-banks-full-one-epoch-after-the-warm-up", "objectives/carl.py",
           "full = (epochs_of_warmup + 1) * steps_per_epoch",
           "full = self.warmup_steps + steps_per_epoch", (OBJ,)),
    Mutant("decoder-classifier-padded-right", "models.py",
           'tokenizer.padding_side = "left"\n    tokenizer.init_kwargs["padding_side"] = "left"',
           'tokenizer.padding_side = "right"\n    tokenizer.init_kwargs["padding_side"] = "right"',
           ("tests/test_decoder_classifier.py",)),
    Mutant("vda-term-dropped-in-the-warm-up", "methods/base.py",
           "            if self.augment is not None:\n"
           "                loss = loss + self._augment_step",
           "            if self.augment is not None and not self.in_warmup():\n"
           "                loss = loss + self._augment_step", (VDA,)),
    Mutant("plain-accumulation-sums-micro-batch-means", "training/trainer.py",
           "            self.model_accepts_loss_kwargs = False",
           "            pass", (DIST,)),
    Mutant("hull-search-keeps-the-loss-scale", "hull.py",
           "logits.grad = grad / loss_scale", "logits.grad = grad", ("tests/test_ascc.py",)),
    Mutant("decoder-positions-from-zero", "decoders.py",
           "kwargs[\"position_ids\"] = (mask.long().cumsum(-1) - 1).clamp(min=0)",
           "pass", ("tests/test_decoder_classifier.py",)),
    Mutant("decoder-drift-reads-the-first-token", "tasks/classification.py",
           "        if self._reads_last:\n            return last_token_representation",
           "        if False:\n            return last_token_representation",
           ("tests/test_decoder_classifier.py",)),

    # session 51's review findings
    Mutant("glue-takes-a-labelled-test-folder", "data/glue.py",
           "    if _has_labels(folder / \"test.tsv\", task):\n        return None\n", "",
           ("tests/test_data_files.py",)),
    Mutant("limit-drawn-with-the-training-seed", "training/run.py",
           "limit=config.limit, seed=config.split_seed)", "limit=config.limit, seed=config.seed)",
           ("tests/test_reliability.py",)),
    Mutant("report-groups-by-method-options-only", "report/runs.py",
           "    fields = {name: config.get(name, default) for name, default in KEY_FIELDS.items()}",
           "    fields = {name: config.get(name, default) for name, default in KEY_FIELDS.items()\n"
           "              if name in (\"dataset\", \"model\", \"method\")}",
           ("tests/test_report.py",)),
    Mutant("vaa-b-on-another-split", "training/base_run.py",
           "    _same_held_out(run, run_config, data, config)\n", "", ("tests/test_vaa.py",)),
    Mutant("vaa-decoder-without-positions-hook", "vaa/model.py",
           "            model.register_forward_pre_hook(positions_from_mask, with_kwargs=True)",
           "            pass", ("tests/test_decoder_classifier.py",)),
    Mutant("translation-bleu-against-decoded-labels", "tasks/translation.py",
           "        texts = self._references.get(self._split)\n        if texts is None:",
           "        texts = self._references.get(self._split)\n        if True:",
           ("tests/test_translation.py",)),
    Mutant("lm-generate-feeds-token-type-ids", "tasks/lm.py",
           'inputs = {key: encoded[key] for key in ("input_ids", "attention_mask")}',
           "inputs = dict(encoded)", ("tests/test_lm.py",)),
    Mutant("greedy-keeps-the-saved-search-settings", "tasks/base.py",
           '"encoder_no_repeat_ngram_size": 0, "repetition_penalty": 1.0, "min_length": 0,',
           '"encoder_no_repeat_ngram_size": 0, "min_length": 0,',
           ("tests/test_lm.py", "tests/test_translation.py")),
]


def mutated(mutant: Mutant, src: Path) -> str:
    """The text of the mutant's file with its change applied (one occurrence, or an error)."""
    text = (src / mutant.file).read_text(encoding="utf-8")
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: the original text occurs {count} times in "
                         f"{mutant.file} (the code moved: update the mutant)")
    text = text.replace(mutant.old, mutant.new)
    try:  # a mutant that does not compile would be "killed" by any test: refuse it
        compile(text, mutant.file, "exec")
    except SyntaxError as exc:
        raise SystemExit(f"mutant {mutant.name} is not valid Python: {exc}") from None
    return text


def survives(mutant: Mutant, timeout: int) -> tuple[bool, float, str]:
    """``(every test passed, seconds, pytest's last line)`` for one mutant."""
    with tempfile.TemporaryDirectory(prefix="advembed-mutant-") as tmp:
        copy = Path(tmp) / "advembed"
        shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
        (copy / mutant.file).write_text(mutated(mutant, copy), encoding="utf-8")
        env = os.environ | {"PYTHONPATH": tmp, "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
             "-p", "no:warnings", *mutant.tests],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        return result.returncode == 0, time.perf_counter() - started, (lines or ["?"])[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the mutants whose name contains this text")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or args.only in m.name]
    for mutant in chosen:  # every mutant must still apply before anything runs
        mutated(mutant, SRC)
    survivors = []
    for mutant in chosen:
        alive, seconds, last = survives(mutant, args.timeout)
        print(f"{'SURVIVED' if alive else 'killed  '} {mutant.name:42s} {seconds:5.0f} s  {last}",
              flush=True)
        if alive:
            survivors.append(mutant.name)
    if survivors:
        print("survivors: " + ", ".join(survivors))
    print(f"{len(chosen)} mutants, {len(survivors)} survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
