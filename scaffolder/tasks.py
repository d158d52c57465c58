"""Task knowledge as tables: what each task, model family and PEFT method needs.

Adding a task means one `TASKS` entry, one `templates/<task>/` folder and one probe module in
`scaffolder/probes/`; adding a model family means one `FAMILIES` entry. Nothing else in scaffolder branches on
a task or family name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    peft_methods: tuple[str, ...]
    # Model architectures (ModelFamily.architecture) the task's auto class works with.
    architectures: tuple[str, ...] = ("encoder",)
    report_file: str = "eval_report.txt"  # the best epoch's human-readable evaluation, in output_dir
    # Hyperparameters that suit the task; `learning_rate` is per PEFT method (adapters want larger steps).
    num_epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rates: dict[str, float] = field(default_factory=dict)
    # The longest max_length the data may pick: encoders stop at 512 positions; decoders read longer texts.
    max_length_cap: int = 512

    @property
    def template_dir(self) -> str:
        return self.name

    @property
    def probe(self) -> str:
        """The module in scaffolder/probes/ that reads this task's data."""
        return self.name.replace("-", "_")


TASKS: dict[str, TaskInfo] = {
    "text-classification": TaskInfo(
        name="text-classification",
        summary="label a text or a sentence pair with one class (sentiment, topic, NLI, paraphrase)",
        auto_class="AutoModelForSequenceClassification",
        peft_task_type="SEQ_CLS",
        default_model="google-bert/bert-base-uncased",
        multilingual_model="FacebookAI/xlm-roberta-base",
        metrics=("accuracy", "macro_f1", "weighted_f1", "classification report"),
        best_metric="eval_macro_f1",
        peft_methods=("none", "lora"),
        report_file="classification_report.txt",
        learning_rates={"none": 2e-5, "lora": 2e-4},
    ),
    "text-generation": TaskInfo(
        name="text-generation",
        summary="causal LM fine-tuning: instructions, chat conversations or plain text (continued pre-training)",
        auto_class="AutoModelForCausalLM",
        peft_task_type="CAUSAL_LM",
        # Small, multilingual, and ships a chat template: instruction and chat data train in its own format.
        default_model="Qwen/Qwen2.5-0.5B-Instruct",
        multilingual_model="Qwen/Qwen2.5-0.5B-Instruct",
        metrics=("loss", "perplexity"),
        best_metric="eval_loss",
        peft_methods=("none", "lora"),
        architectures=("decoder",),
        num_epochs=3,
        batch_size=8,
        # Evaluation computes a vocabulary-wide logit row per token of every example in the batch at once.
        eval_batch_size=8,
        learning_rates={"none": 2e-5, "lora": 2e-4},
        # Long enough for most instruction and chat examples; each token costs a vocabulary-wide logit row.
        max_length_cap=1024,
    ),
}


@dataclass(frozen=True)
class PeftMethod:
    name: str
    summary: str
    # The smoke run's learning rate: a random tiny model must visibly learn within a few dozen steps.
    smoke_learning_rate: float
    # config.yaml knobs for the method: name -> (default, one-line comment)
    knobs: dict[str, tuple[Any, str]] = field(default_factory=dict)


PEFT_METHODS: dict[str, PeftMethod] = {
    "none": PeftMethod("none", "full fine-tune: every weight trains", smoke_learning_rate=1e-2),
    "lora": PeftMethod(
        "lora",
        "LoRA: low-rank adapters on the attention projections; the head trains in full",
        smoke_learning_rate=5e-2,
        knobs={
            "lora_r": (8, "rank of the update matrices"),
            "lora_alpha": (16, "scale of the update (alpha / r multiplies it)"),
            "lora_dropout": (0.1, "dropout on the adapter input"),
        },
    ),
}


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


_ENCODER_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
# Set key/value heads explicitly: the configs' defaults are those of a 7B model (32 for qwen2).
_DECODER_TINY = {**_ENCODER_TINY, "num_key_value_heads": 1}
_WITH_TYPES = ("input_ids", "token_type_ids", "attention_mask")
_NO_TYPES = ("input_ids", "attention_mask")

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
        ),
        ModelFamily("xlm-roberta", ("xlm-roberta",), _ENCODER_TINY, _NO_TYPES),
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
        ),
        ModelFamily(
            "albert",
            ("albert",),
            # With the default 0.02 init a tiny ALBERT (one layer's weights shared) often starts with the same
            # output for every input and its LoRA smoke run stalls at ln(classes); a wider init keeps inputs apart.
            {**_ENCODER_TINY, "embedding_size": 16, "initializer_range": 0.1},
            _WITH_TYPES,
            lora_targets=("query", "value"),
        ),
        ModelFamily("electra", ("electra",), {**_ENCODER_TINY, "embedding_size": 32}, _WITH_TYPES),
        ModelFamily("bert", ("bert", "minilm", "bge-", "e5-"), _ENCODER_TINY, _WITH_TYPES),
        ModelFamily(
            "gpt2",
            ("gpt2",),  # openai-community/gpt2 (-medium, -large, -xl), distilgpt2
            {"n_embd": 32, "n_layer": 2, "n_head": 2},
            _NO_TYPES,
            architecture="decoder",
        ),
        ModelFamily("qwen2", ("qwen2",), _DECODER_TINY, _NO_TYPES, architecture="decoder"),  # Qwen2 and Qwen2.5
        ModelFamily("mistral", ("mistral",), _DECODER_TINY, _NO_TYPES, architecture="decoder"),
        ModelFamily("llama", ("llama",), _DECODER_TINY, _NO_TYPES, architecture="decoder"),  # Llama 2/3, TinyLlama
    )
}


def family_from_name(model: str) -> ModelFamily | None:
    """The family a hub id names, judged by its last path component; None when no pattern matches."""
    name = model.rstrip("/").rsplit("/", 1)[-1].lower()
    for family in FAMILIES.values():
        if any(pattern in name for pattern in family.name_patterns):
            return family
    return None
