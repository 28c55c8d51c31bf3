"""VDA's regularised training (paper 003 §4.2, eq. 1, 6, 7) around a frozen masked LM.

``VirtualAugmenter.term`` is ``λ·(1/k)·Σ_j D(f(E), f(Ê_j))`` with ``D`` the symmetric KL
(default) or, for the CE-VDA ablation, ``CE(f(Ê_j), y)``; ``--method vda`` adds the clean
cross-entropy (eq. 7) and ``--augment vda`` adds the term to another method's step.  The term's
gradient flows through both predictions, f(E) and f(Ê) (eq. 1 minimises it over θ, which both
depend on; nothing in the paper stops the gradient on either side, unlike SMART's target), and
through the embedding rows of E and of the mixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from advembed.errors import AdvembedError
from advembed.losses import symmetric_kl, target_positions
from advembed.settings import Settings, setting
from advembed.vda.mixture import FORMS, NOISE_ON, Substitutes, replaceable, substitutes

PAPER = "paper 003 §5"


@dataclass(frozen=True)
class VDASettings(Settings):
    """Paper 003 §5: σ² = 1e-2 (tuned in {1e-3, 4e-3, 1e-2, 4e-2}), λ = 1 (tuned in {0.04,
    0.1, 0.4, 1, 4}), one virtual sample.  Its learning rate 1e-5 and 5 % warm-up are not VDA's
    settings but the run's, ``--lr`` and ``--warmup-ratio``, whose defaults (2e-5, 10 %, chosen
    for every method on our encoder) VDA runs take unless given: pass ``--lr 1e-5
    --warmup-ratio 0.05`` for the paper's.  With k > 1 virtual samples the k sKL terms are
    averaged into one step (eq. 6); Algorithm 1's listing, which places "optimize θ using eq. 1"
    inside its loop over the k samples (k steps), contradicts its own eq. 6 and is not
    followed; the two agree at the default k = 1."""

    owner = "VDA"
    mlm: str = setting("default", "--vda-mlm", "VDA: the frozen masked LM giving the "
                       "substitution probabilities ('default': built by `advembed mlm build`; "
                       "a folder or hub name; same vocabulary as the classifier)")
    variance: float = setting(1e-2, "--vda-variance", "VDA: variance σ² of the Gaussian noise "
                              "(eq. 3; 0 = the VDA−ε ablation)", minimum=0, paper=PAPER)
    weight: float = setting(1.0, "--vda-weight", "VDA: weight λ of the regulariser (eq. 1)",
                            minimum=0, paper=PAPER)
    samples: int = setting(1, "--vda-samples", "VDA: virtual samples k per example (eq. 6)",
                           minimum=1, paper=PAPER)
    top_k: int = setting(64, "--vda-top-k", "VDA: substitutes kept per position (sparse "
                         "mixture; 0 = the whole vocabulary)", minimum=0,
                         paper="ours: cost; dense and sparse compared in tests/test_vda.py")
    noise_on: str = setting("logits", "--vda-noise-on", "VDA: eq. 4's noise on the MLM's "
                            "log-probabilities (logits: σ → 0 gives the MLM's distribution) "
                            "or on its probabilities (the literal eq. 4: near-uniform; "
                            "with --vda-top-k 0)",
                            choices=NOISE_ON, paper="ours: eq. 4 read on log-probabilities")
    form: str = setting("mixture", "--vda-form", "VDA: mixture (eq. 5), or one substitute: "
                        "argmax or sample (Table 4 ablations)", choices=FORMS, paper=PAPER)
    loss: str = setting("skl", "--vda-loss", "VDA: skl = symmetric KL to the clean prediction "
                        "(eq. 6); ce = cross-entropy on the virtual sample (CE-VDA, Table 4)",
                        choices=("skl", "ce"), paper=PAPER)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise_on == "probabilities" and self.top_k != 0:  # see vda/mixture.py
            raise AdvembedError(f"--vda-noise-on probabilities (the literal eq. 4) mixes over "
                                f"the whole vocabulary: give --vda-top-k 0, not {self.top_k}")


class VirtualAugmenter:
    """Virtual samples and VDA's term for a classifier ``model``, from a frozen masked LM.

    The MLM runs once per step without gradient; the substitution distribution is fixed for
    the step and the mixture re-gathers the *classifier's* embedding rows (eq. 5's ``M_E``: the
    paper's BERT shares it with its MLM; here the classifier's rows are mixed whichever MLM
    scores them, so Ê stays in the classifier's embedding space), so the embedding matrix
    gets its gradient through Ê as it does through E.  ``mlm`` may be passed already loaded, with
    ``special_ids`` the token ids that are never replaced; otherwise ``settings.mlm`` is
    loaded and its tokenizer's special tokens are used.
    """

    def __init__(self, model: torch.nn.Module, settings: VDASettings | None = None, *,
                 mlm: torch.nn.Module | None = None, special_ids: list[int] | None = None,
                 generator: torch.Generator | None = None) -> None:
        self.settings = settings or VDASettings()
        if mlm is None:
            from advembed.mlm import load_masked_lm

            mlm, tokenizer = load_masked_lm(self.settings.mlm, flag="--vda-mlm")
            # [UNK] is a real word the vocabulary lacks: eq. 2–5 replace it like any word
            special_ids = [i for i in tokenizer.all_special_ids if i != tokenizer.unk_token_id]
        self.mlm = mlm.eval().requires_grad_(False)
        self.special_ids = torch.tensor(sorted(set(special_ids or [])), dtype=torch.long)
        self.generator = generator
        rows = model.get_input_embeddings().num_embeddings
        mlm_rows = self.mlm.get_output_embeddings().out_features
        if mlm_rows != rows:
            raise AdvembedError(f"--vda-mlm '{self.settings.mlm}' predicts {mlm_rows} words but "
                                f"the classifier embeds {rows}: VDA needs the same vocabulary")

    def mlm_logits(self, inputs: dict[str, Any]) -> torch.Tensor:
        """The MLM's scores of every word at every position of the unmasked batch (eq. 2)."""
        self.mlm.to(inputs["input_ids"].device)
        mlm_inputs = {key: inputs[key] for key in ("input_ids", "attention_mask",
                                                     "token_type_ids") if key in inputs}
        with torch.no_grad():
            return self.mlm(**mlm_inputs).logits

    def substitutes(self, inputs: dict[str, Any], logits: torch.Tensor) -> Substitutes:
        """One draw of the substitution distribution for the batch (eq. 3–4)."""
        replace = replaceable(inputs["input_ids"], inputs.get("attention_mask"),
                              self.special_ids)
        s = self.settings
        return substitutes(logits, replace, variance=s.variance, noise_on=s.noise_on,
                           top_k=s.top_k, form=s.form, generator=self.generator)

    def term(self, adapter, inputs: dict[str, Any],
             clean_logits: torch.Tensor | None) -> torch.Tensor:
        """``λ/k·Σ_j D(f(E), f(Ê_j))`` (eq. 1, 6) in the graph, for the caller to add to its
        loss: one MLM pass, then ``k`` noise draws and virtual forward passes."""
        s = self.settings
        logits = self.mlm_logits(inputs)
        total = torch.zeros((), device=inputs["input_ids"].device)
        for _ in range(s.samples):
            embeds = self.virtual_embeddings(adapter, inputs, logits)
            virtual = adapter.forward(inputs, embeds=embeds)
            if s.loss == "skl":
                if clean_logits is None:
                    raise ValueError("VDA's symmetric KL needs the clean logits")
                divergence = symmetric_kl(clean_logits, virtual.logits,
                                          target_positions(inputs, virtual.logits))
            else:
                divergence = F.cross_entropy(virtual.logits.float(), inputs["labels"])
            total = total + divergence
        return s.weight / s.samples * total

    def virtual_embeddings(self, adapter, inputs: dict[str, Any],
                           logits: torch.Tensor | None = None) -> torch.Tensor:
        """``Ê``: a fresh draw of eq. 4–5 mixing the classifier's embedding rows (in the graph)."""
        if logits is None:
            logits = self.mlm_logits(inputs)
        original = adapter.embed(inputs)
        return self.substitutes(inputs, logits).embed(adapter.word_embeddings.weight, original)


def check_for_run(vda: VDASettings, task: Any, dataset: str, split_seed: int) -> None:
    """What a training run with VDA refuses before anything loads: CE-VDA on a token-level
    task (no class label), and a built MLM that trained on this split seed's test sentences
    (:func:`advembed.mlm.check_mlm_split`)."""
    from advembed.mlm import check_mlm_split

    if vda.loss == "ce" and task is not None and task.token_level:
        raise AdvembedError(f"--vda-loss ce is cross-entropy against a class label (paper "
                            f"003's CE-VDA); a --task {task.name} run has none: use "
                            "--vda-loss skl")
    check_mlm_split(vda.mlm, dataset, split_seed, "--vda-mlm")


def refused_augment(method: str) -> str:
    """Why ``--augment vda`` does not go with ``method`` (``none``, ``vda``, ``vaa``)."""
    if method == "vaa":
        return ("--augment vda does not go with --method vaa: VAA's model A is frozen and reads "
                "its own embeddings of the real tokens, which a virtual mixture of model B's "
                "embedding rows is not, and VDA's gradient would flow through A's features")
    return (f"--augment vda needs an adversarial --method (got '{method}'; plain fine-tuning "
            "with VDA is --method vda alone)")
