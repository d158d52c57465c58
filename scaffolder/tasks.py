"""Task knowledge as tables: what each task, model family and PEFT method needs.

Adding a task means one `TASKS` entry, one `templates/<task>/` folder and one probe module in
`scaffolder/probes/`; adding a model family means one `FAMILIES` entry. Nothing else in scaffolder branches on
a task or family name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any


@dataclass(frozen=True)
class TaskInfo:
    name: str
    summary: str
    auto_class: str  # transformers AutoModel class the project trains
    peft_task_type: str  # peft.TaskType member
    default_model: str
    multilingual_model: str  # default when the data is mostly non-Latin text
    metrics: tuple[str, ...]
    best_metric: str  # metric that picks the best epoch's checkpoint
    # Model architectures (ModelFamily.architecture) the task's auto class works with.
    architectures: tuple[str, ...] = ("encoder",)
    report_file: str = "eval_report.txt"  # the best epoch's human-readable evaluation, in output_dir
    # A different best_metric for a spec `problem_type` (regression has no F1).
    best_metric_by_problem: dict[str, str] = field(default_factory=dict)
    # Hyperparameters that suit the task; `learning_rate` is per PEFT method (adapters want larger steps).
    num_epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rates: dict[str, float] = field(default_factory=dict)
    # The smoke run's learning rate for a PEFT method where the method's own does not suit the task's tiny model.
    smoke_learning_rates: dict[str, float] = field(default_factory=dict)
    # The head reads the pooled first token (sequence classification): a family's freshly initialised pooler
    # (ModelFamily.extra_modules_to_save) must then train with it. Token and span heads read every token.
    pooled_head: bool = False
    # Requirements the generated project adds to the training stack (metrics libraries).
    dependencies: tuple[str, ...] = ()
    # The longest max_length the data may pick: encoders stop at 512 positions; decoders read longer texts.
    max_length_cap: int = 512
    # group_by_length sorts this many batches' worth of shuffled examples by length at a time, then shuffles the
    # batches (None: up to 50, the Trainer's window). Fewer keeps batches varied where length goes with content:
    # short sentences are alike. On SST-2, 50 kept the Trainer's accuracy at 2.4x its speed (README, Benchmarks).
    length_group_batches: int | None = None
    # The base model can be held in 4-bit under LoRA/AdaLoRA (QLoRA; bitsandbytes' causal-LM support).
    quantizable: bool = False
    # The column roles its probe reads (--column ROLE=NAME) and the data layouts it tells apart (data_layout;
    # empty: one layout, none recorded). A role or layout outside these would be recorded and silently ignored.
    roles: tuple[str, ...] = ()
    layouts: tuple[str, ...] = ()
    # Its probe and data.py read csv/tsv files without a header row, the columns named by `header` (--header).
    headerless: bool = False

    @property
    def template_dir(self) -> str:
        return self.name

    def learning_rate(self, peft: str) -> float:
        """The default rate for a PEFT method: the task's own where it has one, else the method's."""
        return self.learning_rates.get(peft, PEFT_METHODS[peft].learning_rate)

    @property
    def has_head(self) -> bool:
        """A task head trains on top of the model (classifier, tagger, span head): the smoke run checks it."""
        return self.peft_task_type in ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS")

    def smoke_fixed_batch(self, peft: str) -> bool:
        """The smoke run fits one fixed batch: a prompt method with no head to train, whose virtual tokens lower
        the loss by a few percent, about what batches of other rows differ by."""
        return PEFT_METHODS[peft].prompt_learning and not self.has_head

    def smoke_learning_rate(self, peft: str) -> float:
        """The smoke run's rate: the task's own where it has one, the method's fixed-batch one on a fixed batch,
        else the method's."""
        method = PEFT_METHODS[peft]
        fixed = method.smoke_fixed_batch_learning_rate if self.smoke_fixed_batch(peft) else None
        return self.smoke_learning_rates.get(peft, fixed or method.smoke_learning_rate)

    @property
    def probe(self) -> str:
        """The module in scaffolder/probes/ that reads this task's data."""
        return self.name.replace("-", "_")


TASKS: dict[str, TaskInfo] = {
    "text-classification": TaskInfo(
        roles=("text", "text_pair", "label"),
        name="text-classification",
        summary="label a text or a text pair: one class (sentiment, NLI), a set of classes (tags) or a score (STS-B)",
        auto_class="AutoModelForSequenceClassification",
        peft_task_type="SEQ_CLS",
        default_model="google-bert/bert-base-uncased",
        multilingual_model="FacebookAI/xlm-roberta-base",
        metrics=(
            "accuracy, macro/weighted F1, classification report; multi-label: micro/macro F1, subset accuracy; "
            "regression: pearson, spearman, mse",
        ),
        best_metric="eval_macro_f1",
        report_file="classification_report.txt",
        best_metric_by_problem={"multi_label_classification": "eval_micro_f1", "regression": "eval_pearson"},
        learning_rates={"none": 2e-5, "lora": 2e-4},
        pooled_head=True,
        headerless=True,
    ),
    "token-classification": TaskInfo(
        roles=("tokens", "tags"),
        layouts=("conll", "records", "spans", "cluener", "label-studio"),
        name="token-classification",
        summary="tag every word of a sentence (named entities, BIO tags)",
        auto_class="AutoModelForTokenClassification",
        peft_task_type="TOKEN_CLS",
        # Cased: capitals are the strongest single clue for names.
        default_model="google-bert/bert-base-cased",
        multilingual_model="FacebookAI/xlm-roberta-base",
        metrics=("precision", "recall", "f1", "accuracy", "seqeval report"),
        best_metric="eval_f1",
        report_file="classification_report.txt",
        learning_rates={"none": 5e-5, "lora": 5e-4},
        dependencies=("seqeval>=1.2",),
        # One epoch of CoNLL-style NER (bench/token_classification.py's data): entity F1 0.4-0.6 points below
        # random batches with 2 batches sorted together, 1.5 points at 4, 3 points at the default (23 there),
        # measured when each window's batches still came longest first (not yet re-measured with them shuffled).
        length_group_batches=2,
    ),
    "question-answering": TaskInfo(
        roles=("question", "context", "answers", "id"),
        layouts=("squad", "records"),
        name="question-answering",
        summary="find the answer to a question as a span of its context (SQuAD; unanswerable questions too)",
        auto_class="AutoModelForQuestionAnswering",
        peft_task_type="QUESTION_ANS",
        # Already trained on SQuAD 2.0: fine-tuning starts from a model that answers (and abstains).
        default_model="deepset/roberta-base-squad2",
        multilingual_model="FacebookAI/xlm-roberta-base",
        metrics=("exact_match", "f1"),
        best_metric="eval_f1",
        report_file="eval_predictions.jsonl",
        num_epochs=2,
        learning_rates={"none": 3e-5, "lora": 3e-4},
    ),
    "text-generation": TaskInfo(
        roles=("instruction", "input", "response", "messages", "text"),
        layouts=("instruction", "chat", "text"),
        name="text-generation",
        summary="causal LM fine-tuning: instructions, chat conversations or plain text (continued pre-training)",
        auto_class="AutoModelForCausalLM",
        peft_task_type="CAUSAL_LM",
        # Small, multilingual, and ships a chat template: instruction and chat data train in its own format.
        default_model="Qwen/Qwen2.5-0.5B-Instruct",
        multilingual_model="Qwen/Qwen2.5-0.5B-Instruct",
        metrics=("loss", "perplexity"),
        best_metric="eval_loss",
        architectures=("decoder",),
        num_epochs=3,
        batch_size=8,
        # Evaluation computes a vocabulary-wide logit row per token of every example in the batch at once.
        eval_batch_size=8,
        learning_rates={"none": 2e-5, "lora": 2e-4},
        # A tiny decoder's LoRA overshoots at 5e-2 on packed plain text (the loss stalls near where it started).
        smoke_learning_rates={"lora": 2e-2},
        # Long enough for most instruction and chat examples; each token costs a vocabulary-wide logit row.
        max_length_cap=1024,
        headerless=True,
        # One epoch of LoRA on bench/text_generation.py's requests (seed 42): eval loss 5.244 with random batches,
        # 5.258 with 4 batches sorted together (1.33x the tokens/s), 5.263 with 8, 5.290 with the default, measured
        # when each window's batches still came longest first (not yet re-measured with them shuffled).
        length_group_batches=4,
        quantizable=True,
    ),
    "summarization": TaskInfo(
        roles=("text", "summary"),
        headerless=True,
        name="summarization",
        summary="write a short summary of a document (news, dialogue, abstracts)",
        auto_class="AutoModelForSeq2SeqLM",
        peft_task_type="SEQ_2_SEQ_LM",
        default_model="google-t5/t5-small",
        multilingual_model="google/mt5-small",
        metrics=("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len"),
        best_metric="eval_rougeL",
        architectures=("encoder-decoder",),
        report_file="eval_predictions.jsonl",
        num_epochs=3,
        batch_size=8,
        # Larger steps than encoders take: transformers' T5 guide finds 1e-4 to 3e-4 work with AdamW.
        learning_rates={"none": 1e-4, "lora": 1e-3},
        dependencies=("rouge-score>=0.1.2", "sentencepiece>=0.2", "protobuf>=4"),
    ),
    "translation": TaskInfo(
        roles=("source", "target", "translation"),
        layouts=("wmt", "columns", "moses"),
        headerless=True,
        name="translation",
        summary="translate text from one language into another",
        auto_class="AutoModelForSeq2SeqLM",
        peft_task_type="SEQ_2_SEQ_LM",
        default_model="google-t5/t5-small",
        multilingual_model="google/mt5-small",
        metrics=("bleu", "chrf", "gen_len"),
        best_metric="eval_bleu",
        architectures=("encoder-decoder",),
        report_file="eval_predictions.jsonl",
        num_epochs=3,
        batch_size=16,
        learning_rates={"none": 1e-4, "lora": 1e-3},
        dependencies=("sacrebleu>=2.3", "sentencepiece>=0.2", "protobuf>=4"),
    ),
}


@dataclass(frozen=True)
class PeftMethod:
    name: str
    summary: str
    learning_rate: float  # default peak learning rate; a task's `learning_rates` entry overrides it
    # The smoke run's learning rate: a random tiny model must visibly learn within a few dozen steps.
    smoke_learning_rate: float
    # The smoke run's rate where it fits one fixed batch (TaskInfo.smoke_fixed_batch); None: smoke_learning_rate.
    smoke_fixed_batch_learning_rate: float | None = None
    # config.yaml knobs for the method: name -> (default, one-line comment)
    knobs: dict[str, tuple[Any, str]] = field(default_factory=dict)
    prompt_learning: bool = False  # virtual tokens instead of weight updates
    # export.py can fold the adapter into the base weights. Not IA3: peft's IA3 merge fails on task heads
    # that are modules (roberta, electra, deberta classifiers), and its scaling vectors are tiny anyway.
    mergeable: bool = False
    # Tiny-model config overrides for the smoke run. Methods that leave the model frozen learn only through the
    # features a random model gives them, and a default-initialised tiny model maps every input to nearly the
    # same features; a wider initialisation keeps inputs apart.
    smoke_model: dict[str, Any] = field(default_factory=dict)
    # The smoke run's required loss drop. Virtual tokens are all a prompt method trains: on a tiny random
    # decoder (no task head) the loss moves a few percent, measurably but not by the 5% weight updates give.
    smoke_loss_drop: float = 0.05


_LORA_KNOBS = {
    "lora_alpha": (16, "scale of the update (alpha / r multiplies it)"),
    "lora_dropout": (0.1, "dropout on the adapter input"),
}
_FROZEN_SMOKE = {"initializer_range": 0.2}
_VIRTUAL_TOKENS = {"num_virtual_tokens": (20, "trainable virtual tokens put before every input")}

PEFT_METHODS: dict[str, PeftMethod] = {
    m.name: m
    for m in (
        PeftMethod("none", "full fine-tune: every weight trains", learning_rate=2e-5, smoke_learning_rate=1e-2),
        PeftMethod(
            "lora",
            "LoRA: low-rank adapters on the attention projections; a task head (classifier, span) trains in full",
            learning_rate=2e-4,
            smoke_learning_rate=5e-2,
            knobs={"lora_r": (8, "rank of the update matrices"), **_LORA_KNOBS},
            mergeable=True,
        ),
        PeftMethod(
            "adalora",
            "AdaLoRA: LoRA whose ranks are pruned during training to where they matter most",
            learning_rate=5e-4,
            smoke_learning_rate=5e-2,
            # On a default-initialised tiny encoder its adapters leave every input with the same features: the
            # smoke loss fell (its orthogonality term shrinking) while text-classification's stayed at chance.
            smoke_model=_FROZEN_SMOKE,
            knobs={
                "adalora_init_r": (12, "rank every adapter starts with"),
                "adalora_target_r": (8, "average rank left after pruning"),
                **_LORA_KNOBS,
                "adalora_tinit": (0, "updates before pruning starts"),
                "adalora_tfinal": (0, "updates at the end with the ranks fixed"),
                "adalora_total_step": (None, "updates the pruning schedule spans; null = the whole run"),
            },
            mergeable=True,
        ),
        PeftMethod(
            "ia3",
            "IA3: learned scaling vectors on attention keys/values and the feed-forward layers; the model stays frozen",
            learning_rate=3e-3,
            smoke_learning_rate=1e-1,
            smoke_model=_FROZEN_SMOKE,
        ),
        PeftMethod(
            "prompt-tuning",
            "prompt tuning: trainable virtual-token embeddings before the input; the model stays frozen",
            learning_rate=3e-2,
            smoke_learning_rate=1e-1,
            smoke_model=_FROZEN_SMOKE,
            knobs={
                **_VIRTUAL_TOKENS,
                "prompt_init_text": (None, "start the virtual tokens from this text's embeddings; null = random"),
            },
            prompt_learning=True,
            smoke_loss_drop=0.02,
        ),
        PeftMethod(
            "prefix-tuning",
            "prefix tuning: trainable key/value prefixes in every attention layer",
            learning_rate=1e-2,
            smoke_learning_rate=1e-1,
            smoke_model=_FROZEN_SMOKE,
            knobs={
                **_VIRTUAL_TOKENS,
                "prefix_projection": (False, "reparameterise the prefix through an MLP (more stable, more memory)"),
            },
            prompt_learning=True,
            smoke_loss_drop=0.02,
        ),
        PeftMethod(
            "p-tuning",
            "P-tuning: virtual tokens produced by a small trainable prompt encoder (MLP)",
            learning_rate=1e-2,
            smoke_learning_rate=1e-1,
            # At 0.1 its prompt encoder overshot the fixed batch (the loss rose 3% on en-zh translation, seed 3 of
            # 5); at 0.03 every seed of the text-generation, summarization and translation shapes fell 2.9% or more.
            smoke_fixed_batch_learning_rate=3e-2,
            smoke_model=_FROZEN_SMOKE,
            knobs={
                **_VIRTUAL_TOKENS,
                "encoder_hidden_size": (128, "hidden size of the prompt encoder"),
            },
            prompt_learning=True,
            smoke_loss_drop=0.02,
        ),
    )
}

# Task x method pairs that peft does not support correctly, with the reason given to the user.
_PREFIX_ON_ENCODERS = (
    "peft passes its prefixes to the encoder as past key values, which transformers 5 encoders do not take"
)
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("token-classification", "prompt-tuning"): "virtual tokens shift every position, so token labels misalign",
    ("token-classification", "p-tuning"): "virtual tokens shift every position, so token labels misalign",
    ("question-answering", "prompt-tuning"): "virtual tokens shift the answer span positions",
    ("question-answering", "p-tuning"): "virtual tokens shift the answer span positions",
    # peft 0.21 hands an encoder head's prefixes to the backbone as `past_key_values`, a name transformers 5's
    # encoders no longer take (their forward has `cache`): every such model fails at its first step.
    ("text-classification", "prefix-tuning"): _PREFIX_ON_ENCODERS,
    ("token-classification", "prefix-tuning"): _PREFIX_ON_ENCODERS,
    ("question-answering", "prefix-tuning"): _PREFIX_ON_ENCODERS,
    # peft 0.21 reloads an AdaLoRA adapter in inference mode, whose forward fails when given labels; seq2seq
    # evaluation needs them to build the decoder inputs.
    (
        "summarization",
        "adalora",
    ): "a reloaded AdaLoRA adapter cannot score targets (peft), so the best model cannot be evaluated",
    (
        "translation",
        "adalora",
    ): "a reloaded AdaLoRA adapter cannot score targets (peft), so the best model cannot be evaluated",
}


def peft_refusal(task: TaskInfo, method: str) -> str | None:
    """Why `method` cannot fine-tune for `task`, naming methods that can; None when it can.

    Every task offers every method but the pairs in UNSUPPORTED; tests/test_peft_matrix.py takes a training
    step with every other pair on every model family of the task."""
    reason = UNSUPPORTED.get((task.name, method))
    if reason is None:
        return None
    working = [m for m in PEFT_METHODS if m != method and (task.name, m) not in UNSUPPORTED]
    return f"--peft {method} does not work for {task.name}: {reason}; use {' or '.join(working[:3])}"


@dataclass(frozen=True)
class ModelFamily:
    """One transformers `model_type`: how to recognise it, adapt it, and build a tiny copy for smoke runs."""

    model_type: str
    name_patterns: tuple[str, ...]  # substrings of a hub id that identify the family (checked in table order)
    tiny_config: dict[str, Any]  # config kwargs for a few-thousand-parameter model of this family
    input_names: tuple[str, ...]  # what its tokenizer returns, so a stand-in tokenizer matches the model
    # LoRA targets where peft's own table lacks the family; None means peft's table has it.
    lora_targets: tuple[str, ...] | None = None
    # Freshly initialised modules besides the head that must train and be saved with an adapter.
    extra_modules_to_save: tuple[str, ...] = ()
    architecture: str = "encoder"  # encoder, decoder or encoder-decoder: which tasks' auto classes it has
    # IA3 scaling targets where peft's table lacks the family: (target modules, the feed-forward ones among them).
    ia3_targets: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    # The config attribute with the width of the input embeddings (prompt methods' virtual tokens match it).
    embedding_dim: str = "hidden_size"
    # Encoder-decoders: the special token ("pad" or "eos") the decoder starts generating from.
    decoder_start_token: str | None = None
    # Text put before every input, per task; `{source}` and `{target}` become language names. T5 was
    # pretrained with these task prefixes ("summarize: ", "translate English to German: ").
    source_prefixes: dict[str, str] = field(default_factory=dict)

    def source_prefix(self, task: str, source_lang: str | None = None, target_lang: str | None = None) -> str:
        return self.source_prefixes.get(task, "").format(
            source=language_name(source_lang), target=language_name(target_lang)
        )


# Tiny encoder-decoders train without dropout: a LoRA smoke run (embeddings and output layer frozen) learns
# little in 64 steps, and dropout noise would hide it.
_T5_TINY = {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_heads": 2, "dropout_rate": 0.0}
_T5_PREFIXES = {"summarization": "summarize: ", "translation": "translate {source} to {target}: "}
# BART and Marian tie the output layer to the input embeddings and normalise the last hidden state: with the
# default 0.02 init the logits of a tiny model span about one nat and a LoRA smoke run cannot move the loss.
# A wider init and d_model 64 give the output layer the range that T5's scaled init has.
_BART_TINY = {
    "d_model": 64,
    "init_std": 0.2,
    "dropout": 0.0,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
    "max_position_embeddings": 256,
}
_ENCODER_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
# Set key/value heads explicitly: the configs' defaults are those of a 7B model (32 for qwen2).
_DECODER_TINY = {**_ENCODER_TINY, "num_key_value_heads": 1}
_WITH_TYPES = ("input_ids", "token_type_ids", "attention_mask")
_NO_TYPES = ("input_ids", "attention_mask")
_BERT_IA3 = (("key", "value", "output.dense"), ("output.dense",))

# Order matters: the first family whose pattern occurs in the model name wins ("distilbert" before "bert").
FAMILIES: dict[str, ModelFamily] = {
    f.model_type: f
    for f in (
        ModelFamily(
            "distilbert",
            ("distilbert",),
            {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
            _NO_TYPES,
            lora_targets=("q_lin", "v_lin"),
            ia3_targets=(("k_lin", "v_lin", "lin2"), ("lin2",)),
        ),
        ModelFamily(
            "xlm-roberta",
            ("xlm-roberta",),
            _ENCODER_TINY,
            _NO_TYPES,
            # peft's LoRA table has these; its AdaLoRA and IA3 tables lack the family.
            lora_targets=("query", "value"),
            ia3_targets=_BERT_IA3,
        ),
        ModelFamily("roberta", ("roberta",), _ENCODER_TINY, _NO_TYPES),
        ModelFamily(
            "deberta-v2",
            ("deberta-v3", "deberta-v2", "mdeberta"),
            _ENCODER_TINY,
            _WITH_TYPES,
            # The pooler is not in the pretrained checkpoints: it starts random, so it must train.
            extra_modules_to_save=("pooler",),
        ),
        ModelFamily(
            "modernbert",
            ("modernbert",),
            {**_ENCODER_TINY, "global_attn_every_n_layers": 1},
            _NO_TYPES,
            lora_targets=("Wqkv", "Wo"),
            ia3_targets=(("Wqkv", "mlp.Wo"), ("mlp.Wo",)),
        ),
        ModelFamily(
            "albert",
            ("albert",),
            # With the default 0.02 init a tiny ALBERT (one layer's weights shared) often starts with the same
            # output for every input and its LoRA smoke run stalls at ln(classes); a wider init keeps inputs apart.
            {**_ENCODER_TINY, "embedding_size": 16, "initializer_range": 0.1},
            _WITH_TYPES,
            lora_targets=("query", "value"),
            ia3_targets=(("key", "value", "ffn_output"), ("ffn_output",)),
            embedding_dim="embedding_size",
        ),
        ModelFamily(
            "electra",
            ("electra",),
            # Narrower embeddings than hidden states, as in the real checkpoints (a projection joins them). As for
            # albert, a wider init: through the narrow projection a 0.02 init left LoRA 1.3 points short of the
            # 5% loss drop.
            {**_ENCODER_TINY, "embedding_size": 16, "initializer_range": 0.1},
            _WITH_TYPES,
            lora_targets=("query", "value"),
            ia3_targets=_BERT_IA3,
            embedding_dim="embedding_size",
        ),
        ModelFamily("bert", ("bert", "minilm", "bge-", "e5-"), _ENCODER_TINY, _WITH_TYPES),
        ModelFamily(
            "gpt2",
            ("gpt2",),  # openai-community/gpt2 (-medium, -large, -xl), distilgpt2
            {"n_embd": 32, "n_layer": 2, "n_head": 2},
            _NO_TYPES,
            architecture="decoder",
        ),
        ModelFamily("qwen2", ("qwen2",), _DECODER_TINY, _NO_TYPES, architecture="decoder"),  # Qwen2 and Qwen2.5
        ModelFamily(
            "mistral",
            ("mistral",),
            _DECODER_TINY,
            _NO_TYPES,
            lora_targets=("q_proj", "v_proj"),  # peft's LoRA table has these; its AdaLoRA table lacks mistral
            architecture="decoder",
        ),
        ModelFamily("llama", ("llama",), _DECODER_TINY, _NO_TYPES, architecture="decoder"),  # Llama 2/3, TinyLlama
        # mT5 is a model type of its own (untied output layer, multilingual vocabulary): before "t5".
        ModelFamily(
            "mt5",
            ("mt5",),
            _T5_TINY,
            _NO_TYPES,
            architecture="encoder-decoder",
            decoder_start_token="pad",
            source_prefixes=_T5_PREFIXES,
        ),
        ModelFamily(
            "t5",
            ("t5",),  # t5-small, flan-t5-*, t5-v1_1-*, byt5-*
            _T5_TINY,
            _NO_TYPES,
            architecture="encoder-decoder",
            decoder_start_token="pad",
            source_prefixes=_T5_PREFIXES,
        ),
        ModelFamily(
            "bart",
            ("bart",),  # bart-base, bart-large-cnn, distilbart-*
            _BART_TINY,
            _NO_TYPES,
            architecture="encoder-decoder",
            decoder_start_token="eos",
        ),
        ModelFamily(
            "marian",
            ("opus-mt", "marian"),  # Helsinki-NLP/opus-mt-en-de
            _BART_TINY,
            _NO_TYPES,
            lora_targets=("q_proj", "v_proj"),
            ia3_targets=(("k_proj", "v_proj", "fc2"), ("fc2",)),
            architecture="encoder-decoder",
            decoder_start_token="pad",
        ),
    )
}


# ISO 639-1 codes and the English names that T5's translation prefixes use. Also how a data file's column
# header is recognised as a language (`en`, `zh`, `pt-BR`, `zh_CN`).
LANGUAGES = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "az": "Azerbaijani", "be": "Belarusian",
    "bg": "Bulgarian", "bn": "Bengali", "bs": "Bosnian", "ca": "Catalan", "cs": "Czech", "cy": "Welsh",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "eo": "Esperanto", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish",
    "gl": "Galician", "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian",
    "hy": "Armenian", "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese",
    "ka": "Georgian", "kk": "Kazakh", "km": "Khmer", "kn": "Kannada", "ko": "Korean", "ky": "Kyrgyz",
    "la": "Latin", "lo": "Lao", "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian", "ml": "Malayalam",
    "mn": "Mongolian", "mr": "Marathi", "ms": "Malay", "mt": "Maltese", "my": "Burmese", "ne": "Nepali",
    "nl": "Dutch", "no": "Norwegian", "pa": "Punjabi", "pl": "Polish", "ps": "Pashto", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian",
    "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "te": "Telugu", "th": "Thai",
    "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese",
    "xh": "Xhosa", "yo": "Yoruba", "zh": "Chinese", "zu": "Zulu",
}  # fmt: skip


def base_language(code: str) -> str:
    """`zh_CN` -> `zh`, `pt-BR` -> `pt`: the language without its region."""
    return code.replace("_", "-").split("-", 1)[0].lower()


def language_name(code: str | None) -> str:
    """The English name of a language code; an unknown code stays as written."""
    return LANGUAGES.get(base_language(code), code) if code else ""


def family_from_name(model: str) -> ModelFamily | None:
    """The family a hub id names, judged by its last path component; None when no pattern matches."""
    name = model.rstrip("/").rsplit("/", 1)[-1].lower()
    for family in FAMILIES.values():
        if any(pattern in name for pattern in family.name_patterns):
            return family
    return None


@dataclass(frozen=True)
class TrainingControl:
    """A config.yaml training control beyond the basics: its default, the values it takes and what it does.

    scaffold.toml's `training` table sets any of them (`scaffold regen --set training.NAME=VALUE`), config.yaml
    carries each as one commented line, and `python train.py NAME=VALUE` overrides it for one run."""

    default: Any
    comment: str
    says: str  # the valid values in words, for scaffold's error messages
    choices: tuple[str, ...] = ()  # a word from these; empty: a number (or null, where the default is null)
    minimum: float = 0  # for a number: the smallest valid value
    maximum: float | None = None  # and the first value above its range (label_smoothing: below 1)
    integer: bool = False
    peft: tuple[str, ...] = ()  # the PEFT methods it applies to (config.yaml's method section); empty: every project
    classifier: bool = False  # it applies to classifiers of one label per example or token (weighs_classes) only
    several: bool = False  # a list of choices is valid too


# Scheduler names of transformers.get_scheduler that step once per update on their own: reduce_lr_on_plateau
# steps on a metric and greedy on the loss, which the loop does not hand a scheduler.
LR_SCHEDULERS = (
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt",
    "warmup_stable_decay", "cosine_with_min_lr",
)  # fmt: skip
# The optimizers train.py builds: torch's AdamW (fused, or the plain loop), transformers' Adafactor (factored
# second moments: less optimizer memory), and bitsandbytes' 8-bit AdamW (CUDA only; paged also spills to CPU).
OPTIMIZERS = ("adamw_torch_fused", "adamw_torch", "adafactor", "adamw_8bit", "paged_adamw_8bit")

# transformers' attention implementations (attn_implementation=); flash_attention_2 needs CUDA and flash-attn.
ATTENTION = ("sdpa", "eager", "flash_attention_2")
# LoRA initialisations (peft's init_lora_weights; default is its True). pissa and olora start the adapter from the
# base weights' principal directions and take them out of the base: the project saves the adapter converted to a
# plain LoRA one (twice the rank), which applies to the unchanged base model.
LORA_INITS = ("default", "gaussian", "orthogonal", "pissa", "olora")

# accelerate's experiment trackers (report_to takes one, a list, or none).
TRACKERS = ("tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio")

TRAINING_CONTROLS: dict[str, TrainingControl] = {
    "report_to": TrainingControl(
        "tensorboard", "where loss, learning rate and eval metrics go: " + ", ".join(TRACKERS) + " (tensorboard: "
        "output_dir/tensorboard), a list of them ([tensorboard, wandb]) or none", "one of " + ", ".join(TRACKERS)
        + ", none, or a list of trackers", choices=(*TRACKERS, "none"), several=True,
    ),
    "eval_steps": TrainingControl(
        None, "updates between evaluations (the best model is chosen over them); null = at the end of each epoch",
        "a positive integer or null", minimum=1, integer=True,
    ),
    "early_stopping_patience": TrainingControl(
        None, "stop after this many evaluations in a row without metric_for_best_model improving; null = never",
        "a positive integer or null", minimum=1, integer=True,
    ),
    "early_stopping_threshold": TrainingControl(
        0.0, "an evaluation improves only when it beats the best so far by more than this", "a number >= 0",
    ),
    "lr_scheduler_type": TrainingControl(
        "linear", "the learning rate after warmup (transformers.get_scheduler): " + ", ".join(LR_SCHEDULERS),
        "one of " + ", ".join(LR_SCHEDULERS), choices=LR_SCHEDULERS,
    ),
    "optim": TrainingControl(
        "adamw_torch_fused", "the optimizer: " + ", ".join(OPTIMIZERS) + " (the 8-bit ones: bitsandbytes, CUDA)",
        "one of " + ", ".join(OPTIMIZERS), choices=OPTIMIZERS,
    ),
    "gradient_checkpointing": TrainingControl(
        False, "recompute each block's activations in the backward pass: less memory, one more forward pass per step",
        "true or false",
    ),
    "attn_implementation": TrainingControl(
        None, "sdpa, eager or flash_attention_2 (CUDA, with flash-attn installed); null = the model's default",
        "one of sdpa, eager, flash_attention_2, or null", choices=ATTENTION,
    ),
    "class_weights": TrainingControl(
        None, "weigh each class's targets in the training loss: balanced (n / (classes x count), scikit-learn's), "
        "or a list of weights in labels order; null = all 1", "balanced or null (a list goes in config.yaml)",
        choices=("balanced",), classifier=True,
    ),
    "label_smoothing": TrainingControl(
        0.0, "share of each training target spread evenly over all classes (noisy labels, over-confidence)",
        "a number >= 0 and < 1", maximum=1, classifier=True,
    ),
    # LoRA's variants (peft's LoraConfig). Not loftq: it trains against a quantised base, which predict.py would
    # have to load quantised the same way.
    "use_dora": TrainingControl(
        False, "DoRA: a learned magnitude per output beside the low-rank update of the weight's direction",
        "true or false", peft=("lora",),
    ),
    "use_rslora": TrainingControl(
        False, "rank-stabilised LoRA: scale the update by lora_alpha / sqrt(r) instead of lora_alpha / r",
        "true or false", peft=("lora",),
    ),
    "init_lora_weights": TrainingControl(
        "default", "default (B zero), gaussian (A ~ N(0, 1/r)), orthogonal (B @ A = 0), or pissa / olora (from the "
        "weights' principal directions; saved as a plain LoRA adapter of twice the rank)",
        "one of " + ", ".join(LORA_INITS), choices=LORA_INITS, peft=("lora",),
    ),
}  # fmt: skip


def weighs_classes(task: str, problem_type: str | None) -> bool:
    """A classifier with one label per example or token: its training loss takes class_weights and label_smoothing
    (None: text-classification's problem type is not decided yet)."""
    single = problem_type in (None, "single_label_classification")
    return task == "token-classification" or (task == "text-classification" and single)


def training_control_refusal(name: str, value: Any, peft: str | None = None, classifier: bool = True) -> str | None:
    """Why `value` is not valid for the training control `name` (in a project with PEFT method `peft`; of a
    classifier that weighs_classes), or None."""
    control = TRAINING_CONTROLS.get(name)
    if control is None:
        close = [known for known in TRAINING_CONTROLS if name in known] or get_close_matches(name, TRAINING_CONTROLS, 1)
        hint = f"did you mean `{close[0]}`?" if close else f"known: {', '.join(TRAINING_CONTROLS)}"
        return f"unknown training control `{name}`; {hint}"
    if control.classifier and not classifier:
        return (
            f"`training.{name}` applies to single-label text-classification and token-classification only; "
            f"remove it (--set training.{name}=null)"
        )
    if peft is not None and control.peft and peft not in control.peft:
        methods = " or ".join(f"--peft {method}" for method in control.peft)
        return f"`training.{name}` applies to {methods} only; remove it (--set training.{name}=null)"
    if value is None and control.default is None:
        return None
    if control.choices:
        names = value if control.several and isinstance(value, list) else [value]
        valid = bool(names) and all(isinstance(name, str) and name in control.choices for name in names)
    elif isinstance(control.default, bool):
        valid = isinstance(value, bool)
    else:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        below = control.maximum is None or (number and value < control.maximum)
        valid = number and value >= control.minimum and below and (not control.integer or isinstance(value, int))
    return None if valid else f"`training.{name}` must be {control.says}, got {value!r}"
