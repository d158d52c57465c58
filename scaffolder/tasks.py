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
    learning_rates: dict[str, float] = field(default_factory=dict)
    # pip requirements the generated project needs beyond the shared stack (metric packages, tokenizer backends).
    dependencies: tuple[str, ...] = ()

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
    "summarization": TaskInfo(
        name="summarization",
        summary="write a short summary of a document (news, dialogue, abstracts)",
        auto_class="AutoModelForSeq2SeqLM",
        peft_task_type="SEQ_2_SEQ_LM",
        default_model="google-t5/t5-small",
        multilingual_model="google/mt5-small",
        metrics=("rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len"),
        best_metric="eval_rougeL",
        peft_methods=("none", "lora"),
        architectures=("encoder-decoder",),
        report_file="eval_predictions.jsonl",
        num_epochs=3,
        batch_size=8,
        # Larger steps than encoders take: transformers' T5 guide finds 1e-4 to 3e-4 work with AdamW.
        learning_rates={"none": 1e-4, "lora": 1e-3},
        dependencies=("rouge-score>=0.1.2", "sentencepiece>=0.2", "protobuf>=4"),
    ),
    "translation": TaskInfo(
        name="translation",
        summary="translate text from one language into another",
        auto_class="AutoModelForSeq2SeqLM",
        peft_task_type="SEQ_2_SEQ_LM",
        default_model="google-t5/t5-small",
        multilingual_model="google/mt5-small",
        metrics=("bleu", "chrf", "gen_len"),
        best_metric="eval_bleu",
        peft_methods=("none", "lora"),
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
    # The smoke run's learning rate: a random tiny model must visibly learn within a few dozen steps.
    smoke_learning_rate: float
    # config.yaml knobs for the method: name -> (default, one-line comment)
    knobs: dict[str, tuple[Any, str]] = field(default_factory=dict)


PEFT_METHODS: dict[str, PeftMethod] = {
    "none": PeftMethod("none", "full fine-tune: every weight trains", smoke_learning_rate=1e-2),
    "lora": PeftMethod(
        "lora",
        "LoRA: low-rank adapters on the attention projections; a classification head trains in full",
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
