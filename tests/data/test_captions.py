"""Tests of caption rules, the lexicon POS tagger and caption mirroring (motionlcm.data.captions)."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from motionlcm.data.captions import (
    CaptionRules,
    PromptRewrites,
    format_text_line,
    mirror_caption,
    mirror_text_line,
)
from motionlcm.data.tagger import LEXICON, POS_TAGS, pos_tag, tag_tokens

RULES_PATH = Path(__file__).resolve().parents[2] / "datasets" / "bandai-namco" / "captions.yaml"

# Labels of the Bandai-Namco datasets (cfg/content_label.txt and cfg/style_label.txt of each dataset in
# github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset; dance-long is the clip whose
# BVH blob is missing but whose label exists).
D1_CONTENTS = (
    "walk run dash walk-back walk-left walk-right bow bye byebye guide call respond punch kick slash "
    "dance-short dance-long"
).split()
D1_STYLES = (
    "normal happy sad angry proud not-confident masculinity feminine childish old tired active musical giant chimpira"
).split()
D2_CONTENTS = (
    "walk walk-turn-left walk-turn-right run wave-both-hands wave-left-hand wave-right-hand "
    "raise-up-both-hands raise-up-left-hand raise-up-right-hand"
).split()
D2_STYLES = "active elderly exhausted feminine masculine normal youthful".split()
ALL_PAIRS = sorted({(c, s) for c in D1_CONTENTS for s in D1_STYLES} | {(c, s) for c in D2_CONTENTS for s in D2_STYLES})
SIDED = {c: side for c in D1_CONTENTS + D2_CONTENTS for side in ("left", "right") if side in c}
GENDERED = re.compile(
    r"\b(man|men|woman|women|he|she|his|her|him|guy|girl|boy|lady|male|female|gentleman)\b"
    r"|\b(feminine|masculine|manly|womanly) (person|figure|one)\b"
)

DOC_LINES = {  # token lines predicted by hand with HumanML3D's text_process.py rules (not produced by spaCy)
    "a person walks forward in an elderly manner.":
        "a/DET person/NOUN walk/VERB forward/ADV in/ADP an/DET elderly/ADJ manner/NOUN",
    "someone waves with the left hand energetically.":
        "someone/PRON wave/VERB with/ADP the/DET left/ADJ hand/NOUN energetically/ADV",
}  # fmt: skip


@pytest.fixture(scope="module")
def rules() -> CaptionRules:
    return CaptionRules.load(RULES_PATH)


@pytest.fixture(scope="module")
def all_captions(rules: CaptionRules) -> dict[tuple[str, str], list[list[str]]]:
    """Captions of every label pair of both datasets, for three seeds each."""
    return {pair: [rules.captions(*pair, np.random.default_rng(s)) for s in range(3)] for pair in ALL_PAIRS}


def _plain_texts(rules: CaptionRules, content: str) -> set[str]:
    return {f"{s} {p}." for s in rules.subjects for p in rules.contents[content].phrases}


# --------------------------------------------------------------------------- rules file


def test_rules_file_loads(rules: CaptionRules) -> None:
    assert rules.captions_per_clip == (3, 4)
    assert "a person" in rules.subjects and "someone" in rules.subjects
    assert rules.source.endswith("captions.yaml")


def test_every_bn_label_has_rules(rules: CaptionRules) -> None:
    for content in D1_CONTENTS + D2_CONTENTS:
        assert rules.contents[content].phrases, content
    for style in D1_STYLES + D2_STYLES:
        st = rules.styles[style]
        assert st.adverbs + st.manners + st.subjects, style


def test_rules_contain_no_chimpira_or_gendered_subjects(rules: CaptionRules) -> None:
    words = rules.vocabulary()
    assert "chimpira" not in words
    for subject in list(rules.subjects) + [p.text for st in rules.styles.values() for p in st.subjects]:
        assert not GENDERED.search(subject), subject


def test_mirror_content_pairs_and_involution(rules: CaptionRules) -> None:
    pairs = {
        "walk-turn-left": "walk-turn-right",
        "wave-left-hand": "wave-right-hand",
        "raise-up-left-hand": "raise-up-right-hand",
        "walk-left": "walk-right",
    }
    for a, b in pairs.items():
        assert rules.mirror_content(a) == b and rules.mirror_content(b) == a
    for content in rules.contents:
        assert rules.mirror_content(rules.mirror_content(content)) == content
        if content not in pairs and content not in pairs.values():
            assert rules.mirror_content(content) == content
    with pytest.raises(ValueError, match="moonwalk"):
        rules.mirror_content("moonwalk")


def test_mirror_partners_have_mirrored_phrases(rules: CaptionRules) -> None:
    for content, rule in rules.contents.items():
        partner = rules.contents[rules.mirror_content(content)]
        assert {mirror_caption(p) for p in rule.phrases} == set(partner.phrases), content


def test_turn_labels(rules: CaptionRules) -> None:
    assert rules.turn("walk-turn-left") == "left"
    assert rules.turn("walk-turn-right") == "right"
    for content in ("walk", "walk-left", "walk-right", "run", "wave-left-hand", "bow"):
        assert rules.turn(content) is None, content  # dataset-1 walk-left/right are diagonal walks, not turns


# --------------------------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("stem", "content", "style", "clip_id", "dataset"),
    [
        ("dataset-1_walk-back_chimpira_001", "walk-back", "chimpira", "001", "1"),
        ("dataset-2_raise-up-both-hands_active_104", "raise-up-both-hands", "active", "104", "2"),
        ("dataset-2_walk-turn-left_elderly_012.bvh", "walk-turn-left", "elderly", "012", "2"),
        ("dataset-1_walk_not-confident_002", "walk", "not-confident", "002", "1"),
        ("dataset-1_dance-short_normal_001", "dance-short", "normal", "001", "1"),
    ],
)
def test_parse_name(rules: CaptionRules, stem: str, content: str, style: str, clip_id: str, dataset: str) -> None:
    label = rules.parse_name(stem)
    assert label is not None
    assert (label.content, label.style, label.clip_id) == (content, style, clip_id)
    assert label.groups["dataset"] == dataset


@pytest.mark.parametrize(
    "stem",
    [
        "",
        "readme",
        "dataset-2_walk_normal",
        "dataset-2_walk_normal_001_extra",
        "dataset-2-walk-normal-001",
        "dataset-2_Walk_normal_001",
        "000000",
        "Mdataset-2_walk_normal_001",
    ],
)
def test_parse_name_rejects_garbage(rules: CaptionRules, stem: str) -> None:
    assert rules.parse_name(stem) is None


def test_parse_name_unknown_labels(rules: CaptionRules) -> None:
    with pytest.raises(ValueError, match=r"dataset-2_moonwalk_normal_001: .*'moonwalk'.*known: .*walk-turn"):
        rules.parse_name("dataset-2_moonwalk_normal_001")
    with pytest.raises(ValueError, match=r"unknown style 'sleepy'.*known: .*elderly"):
        rules.parse_name("dataset-2_walk_sleepy_001")


def test_parse_name_on_real_fixture_files(rules: CaptionRules, bn_fixture_dir: Path) -> None:
    paths = sorted(bn_fixture_dir.glob("*.bvh"))
    assert len(paths) == 6
    for path in paths:
        label = rules.parse_name(path.stem)
        assert label is not None and f"_{label.content}_{label.style}_" in path.stem


# --------------------------------------------------------------------------- captions


def test_captions_every_pair_well_formed(rules: CaptionRules, all_captions: dict) -> None:
    starts = tuple(f"{s} " for s in rules.subjects) + tuple(
        f"{p.text} " for st in rules.styles.values() for p in st.subjects
    )
    for pair, runs in all_captions.items():
        for caps in runs:
            assert 3 <= len(caps) <= 4 and len(set(caps)) == len(caps), (pair, caps)
            for cap in caps:
                assert cap == cap.lower() and cap.endswith(".") and not cap.endswith(".."), cap
                assert "#" not in cap and "  " not in cap and " ," not in cap, cap
                assert cap.startswith(starts), cap
                assert "chimpira" not in cap and not GENDERED.search(cap), cap


def test_left_right_words_follow_the_label(rules: CaptionRules, all_captions: dict) -> None:
    checked = 0
    for (content, style), runs in all_captions.items():
        words = {w for caps in runs for cap in caps for w in re.findall(r"[a-z]+", cap)}
        side = SIDED.get(content)
        if side is None:
            assert not words & {"left", "right"}, (content, style)
            continue
        other = "right" if side == "left" else "left"
        assert side in words and other not in words, (content, style)
        mirrored = {
            w
            for seed in range(3)
            for cap in rules.captions(rules.mirror_content(content), style, np.random.default_rng(seed))
            for w in re.findall(r"[a-z]+", cap)
        }
        assert other in mirrored and side not in mirrored, (content, style)
        checked += 1
    assert checked == 6 * 7 + 2 * 15  # dataset-2 sided contents x styles + dataset-1 walk-left/right x styles


def test_normal_has_no_modifier_in_about_half(rules: CaptionRules) -> None:
    for content in ("walk", "wave-left-hand", "bow"):
        plain = _plain_texts(rules, content)
        for n, expected in ((3, 2), (4, 2)):
            for seed in range(5):
                caps = rules.captions(content, "normal", np.random.default_rng(seed), n=n)
                assert sum(c in plain for c in caps) == expected, caps
        caps = rules.captions(content, "elderly", np.random.default_rng(0), n=4)
        assert not any(c in plain for c in caps), caps


def test_all_three_style_placements_occur(rules: CaptionRules) -> None:
    caps = [c for seed in range(20) for c in rules.captions("walk", "exhausted", np.random.default_rng(seed))]
    st = rules.styles["exhausted"]
    assert any(c.endswith(tuple(f" {p.text}." for p in st.adverbs)) for c in caps)
    assert any(c.endswith(tuple(f" {p.text}." for p in st.manners)) for c in caps)
    assert any(re.match(r"(a tired|an exhausted) person (slowly |wearily )?(walks|takes)", c) for c in caps)
    assert any(re.match(r"(a tired|an exhausted) person (slowly|wearily) (walks|takes)", c) for c in caps)


def test_captions_of_a_clip_vary_their_parts(rules: CaptionRules) -> None:
    for seed in range(10):
        caps = rules.captions("walk-turn-left", "elderly", np.random.default_rng(seed), n=4)
        phrases = {p for c in caps for p in rules.contents["walk-turn-left"].phrases if p in c}
        assert len(phrases) >= 3, caps


def test_group_limited_style_phrases(rules: CaptionRules) -> None:
    def many(content: str) -> list[str]:
        rngs = [np.random.default_rng(seed) for seed in range(30)]
        return [c for rng in rngs for c in rules.captions(content, "youthful", rng)]

    gesture, walking = many("wave-left-hand"), many("walk")
    assert not any("bouncy, youthful step" in c for c in gesture)
    assert any("bouncy, youthful step" in c for c in walking)


def test_captions_deterministic_given_seed(rules: CaptionRules) -> None:
    a = [rules.text_lines("wave-left-hand", "elderly", np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(7)
    assert rules.text_lines("wave-left-hand", "elderly", rng) == a[0]
    assert rules.text_lines("wave-left-hand", "elderly", rng) != a[0]  # the state moved on
    many = {tuple(rules.captions("walk", "happy", np.random.default_rng(s))) for s in range(10)}
    assert len(many) > 5


def test_captions_errors(rules: CaptionRules) -> None:
    with pytest.raises(ValueError, match="cannot make 500 distinct captions"):
        rules.captions("bow", "feminine", np.random.default_rng(0), n=500)
    with pytest.raises(ValueError, match="unknown content 'moonwalk'"):
        rules.captions("moonwalk", "normal", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown style 'sleepy'"):
        rules.captions("walk", "sleepy", np.random.default_rng(0))


def test_text_lines_format(rules: CaptionRules) -> None:
    lines = rules.text_lines(rules.mirror_content("raise-up-left-hand"), "active", np.random.default_rng(3))
    assert 3 <= len(lines) <= 4
    for line in lines:
        caption, tokens, start, end = line.split("#")
        assert (start, end) == ("0.0", "0.0") and tokens == pos_tag(caption)
        assert "right/ADJ" in tokens and "left" not in line
        assert all(re.fullmatch(r"[a-z]+/[A-Z]+", t) for t in tokens.split())


# --------------------------------------------------------------------------- tagger


@pytest.mark.parametrize("caption", sorted(DOC_LINES))
def test_pos_tag_doc_lines(caption: str) -> None:
    assert pos_tag(caption) == DOC_LINES[caption]


def test_pos_tag_reproduces_real_humanml3d_tokens(humanml3d_sample_dir: Path) -> None:
    lines = (humanml3d_sample_dir / "texts" / "000000.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    matched = {i for i, line in enumerate(lines) if pos_tag(line.split("#")[0]) == line.split("#")[1]}
    # all four, including "he is flying kick" (kick/NOUN) and "the standing person" (stand/VERB)
    assert matched == {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("caption", "tokens"),
    [
        ("walks and makes a left turn", "walk/VERB and/CCONJ make/VERB a/DET left/ADJ turn/NOUN"),
        ("a person turns left.", "a/DET person/NOUN turn/VERB left/ADV"),
        ("someone walks toward the front left", "someone/PRON walk/VERB toward/ADP the/DET front/ADJ left/NOUN"),
        ("the person throws punches", "the/DET person/NOUN throw/VERB punch/NOUN"),
        ("a figure punches forward", "a/DET figure/NOUN punch/VERB forward/ADV"),
        ("raises one hand to respond", "raise/VERB one/NUM hand/NOUN to/PART respond/VERB"),
        (
            "a person does a t-pose, then walks 2 steps.",
            "a/DET person/NOUN do/VERB a/DET tpose/NOUN then/ADV walk/VERB step/NOUN",
        ),
        ("he does not stop.", "he/PRON does/AUX not/PART stop/VERB"),
        ("a person can't stop jumping", "a/DET person/NOUN ca/AUX stop/VERB jump/VERB"),
        (
            "she waves at her friend and at her",
            "she/PRON wave/VERB at/ADP her/DET friend/NOUN and/CCONJ at/ADP her/PRON",
        ),
        (
            "a person walks in a counterclockwise circle",
            "a/DET person/NOUN walk/VERB in/ADP a/DET counterclockwise/ADJ circle/NOUN",
        ),
        ("Kevin moonwalks gracelessly", "Kevin/PROPN moonwalk/VERB gracelessly/ADV"),
        (
            "the person sits down and stands back up",
            "the/DET person/NOUN sit/VERB down/ADP and/CCONJ stand/VERB back/ADV up/ADP",
        ),
    ],
)
def test_pos_tag_context_rules(caption: str, tokens: str) -> None:
    assert pos_tag(caption) == tokens


def test_tags_are_coarse_universal_tags(all_captions: dict) -> None:
    captions = [cap for runs in all_captions.values() for cap in runs[0]]
    for tokens in [pos_tag(c) for c in captions] + list(DOC_LINES.values()):
        assert {t.rsplit("/", 1)[1] for t in tokens.split()} <= set(POS_TAGS), tokens


def test_every_rule_word_is_in_the_lexicon(rules: CaptionRules, all_captions: dict) -> None:
    assert len(rules.vocabulary()) > 150
    assert rules.unknown_words() == set()
    for runs in all_captions.values():
        for cap in runs[0]:
            assert all(t.known for t in tag_tokens(cap)), cap


def test_lexicon_never_treats_left_as_leave() -> None:
    assert all(pos != "VERB" and lemma == "left" for pos, lemma in LEXICON["left"])
    assert "leave" not in {lemma for entries in LEXICON.values() for _, lemma in entries}


def test_format_text_line() -> None:
    assert (
        format_text_line("a person walks.", "a/DET person/NOUN walk/VERB")
        == "a person walks.#a/DET person/NOUN walk/VERB#0.0#0.0"
    )
    assert format_text_line("x", "x/NOUN", 1.5, 4) == "x#x/NOUN#1.5#4.0"
    with pytest.raises(ValueError, match="caption"):
        format_text_line("a # b", "a/DET")


# --------------------------------------------------------------------------- mirroring free text


@pytest.mark.parametrize(
    ("text", "mirrored"),
    [
        ("a person waves with the left hand.", "a person waves with the right hand."),
        ("Left, then RIGHT; left-handed: right!", "Right, then LEFT; right-handed: left!"),
        ("leftover bright Wright lefty alright", "leftover bright Wright lefty alright"),
        ("turns clockwise, then counterclockwise.", "turns counterclockwise, then clockwise."),
        ("Counter-clockwise and anticlockwise and anti-clockwise", "Clockwise and clockwise and clockwise"),
        ("left/ADJ hand/NOUN right/ADV", "right/ADJ hand/NOUN left/ADV"),
        ("", ""),
    ],
)
def test_mirror_caption(text: str, mirrored: str) -> None:
    assert mirror_caption(text) == mirrored


def test_mirror_caption_is_an_involution(humanml3d_sample_dir: Path) -> None:
    texts = (humanml3d_sample_dir / "texts" / "000000.txt").read_text(encoding="utf-8").splitlines()
    texts += ["Turn LEFT, then right (clockwise) and counterclockwise.", "a left-right sway", "no sides"]
    for text in texts:
        assert mirror_caption(mirror_caption(text)) == text


def test_mirror_text_line_swaps_caption_and_tokens(humanml3d_sample_dir: Path) -> None:
    line = (humanml3d_sample_dir / "texts" / "000000.txt").read_text(encoding="utf-8").splitlines()[1]
    out = mirror_text_line(line + "\n")
    assert out.endswith("\n")
    caption, tokens, start, end = out.rstrip("\n").split("#")
    assert "their right foot" in caption and "right/ADJ foot/NOUN" in tokens and "left" not in out
    assert (start, end) == ("0.0", "0.0")
    assert tokens == pos_tag(caption)
    assert mirror_text_line(mirror_text_line(line)) == line
    with pytest.raises(ValueError, match="caption#tokens#from#to, got 2 fields"):
        mirror_text_line("a person walks left#a/DET")


# --------------------------------------------------------------------------- malformed rules


@functools.lru_cache(maxsize=1)
def _rules_yaml() -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(RULES_PATH.read_text(encoding="utf-8"), Loader=loader)


def _set(data: dict, path: str, value: object) -> None:
    *head, last = path.split("/")
    for key in head:
        data = data[int(key)] if isinstance(data, list) else data[key]
    if value is KeyError:
        del data[last]
    elif isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("contents/walk/phrases", [], "contents.walk.phrases: must be a non-empty list"),
        ("contents/walk/phrases", "walks forward", "contents.walk.phrases: must be a non-empty list"),
        ("contents/walk/speed", "fast", "contents.walk.speed: unknown key"),
        ("contents/walk-turn-left/mirror", "walk", "contents.walk-turn-left.mirror: walk-turn-left -> walk"),
        ("contents/walk-turn-left/mirror", "moon", "contents.walk-turn-left.mirror: unknown content 'moon'"),
        ("contents/walk-turn-right/turn", "left", "contents.walk-turn-left.turn"),
        ("contents/walk/turn", "up", "contents.walk.turn: must be left, right or null"),
        ("contents/bow/phrases", ["bows to the left"], "contents.bow.phrases: names a side"),
        ("contents/run/phrases", ["Runs forward"], "contents.run.phrases[0]: must be lower case"),
        ("styles/sad/manners", ["sadly."], "styles.sad.manners[0]"),
        ("styles/sad/adverbs", "sadly", "styles.sad.adverbs: must be a list"),
        ("styles/sad/adverbs", ["to the left"], "styles.sad: style phrases must not name a side"),
        ("styles/normal/plain_fraction", 2, "styles.normal.plain_fraction: must be a number in [0, 1]"),
        ("styles/happy/colour", "x", "styles.happy.colour: unknown key"),
        ("styles/childish/pre_adverbs", ["slowly"], None),
        ("styles/feminine/pre_adverbs", ["slowly"], "styles.feminine.pre_adverbs: needs subjects"),
        ("styles/youthful/manners/2/only", ["fly"], "youthful.manners[2].only: unknown content group 'fly'"),
        ("styles/musical", {}, "styles.musical: needs at least one of adverbs, manners, subjects"),
        ("filename_pattern", "^(?P<content>.*)$", "filename_pattern: needs named groups"),
        ("filename_pattern", "(", "filename_pattern: invalid regex"),
        ("captions_per_clip", [4, 3], "captions_per_clip: must be"),
        ("subjects", KeyError, "subjects: missing required key"),
        ("colour", "x", "colour: unknown key"),
        ("styles", [], "styles: must be a mapping"),
    ],
)
def test_malformed_rules_name_the_key(tmp_path: Path, path: str, value: object, message: str | None) -> None:
    data = copy.deepcopy(_rules_yaml())
    _set(data, path, value)
    bad = tmp_path / "captions.yaml"
    bad.write_text(
        yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False), encoding="utf-8"
    )
    if message is None:  # a valid variant, to show the mutation helper does not break the file by itself
        assert CaptionRules.load(bad).styles["childish"].pre_adverbs == ("slowly",)
        return
    with pytest.raises(ValueError) as info:
        CaptionRules.load(bad)
    text = str(info.value)
    assert text.startswith(f"{bad}: ") and message in text and "\n" not in text


def test_invalid_yaml_syntax(tmp_path: Path) -> None:
    bad = tmp_path / "captions.yaml"
    bad.write_text("contents: [walk\nstyles: {", encoding="utf-8")
    with pytest.raises(ValueError, match=r"captions.yaml: invalid YAML"):
        CaptionRules.load(bad)


# --------------------------------------------------------------------------- prompt rewrites


@pytest.mark.parametrize(
    ("prompt", "read_as"),
    [
        ("a woman raises her left arm", "a person raises the left arm"),
        ("She waves with her left hand", "The person waves with the left hand"),
        ("a man walks and then he turns to the right", "a person walks and then the person turns to the right"),
        ("an old man walks slowly", "an old person walks slowly"),
        ("the guy waves to her", "the person waves to the person"),
        ("HE RAISES HIS RIGHT HAND", "THE PERSON RAISES THE RIGHT HAND"),
        ("someone walks in a masculine, manly way", "someone walks in a masculine, manly way"),  # manners stay
        ("a person walks in a manner of a heavy giant", "a person walks in a manner of a heavy giant"),
    ],
)
def test_prompt_rewrites_give_gendered_prompts_the_captions_subject(rules: CaptionRules, prompt, read_as) -> None:
    assert rules.prompt_rewrites(prompt) == read_as


def test_prompt_rewrites_leave_every_caption_of_the_rules_unchanged(rules: CaptionRules, all_captions) -> None:
    """A rewrite that touched a word the captions use would move the prompts the model knows best."""
    assert rules.prompt_rewrites
    for pair, draws in all_captions.items():
        for caption in (c for draw in draws for c in draw):
            assert rules.prompt_rewrites(caption) == caption, (pair, caption)


def test_prompt_rewrites_round_trip_through_a_list(rules: CaptionRules) -> None:
    again = PromptRewrites.from_list(rules.prompt_rewrites.to_list(), "meta.prompt_rewrites")
    assert again.to_list() == rules.prompt_rewrites.to_list()
    assert again("she waves") == "the person waves"
    assert not PromptRewrites.from_list(None, "x") and PromptRewrites.from_list(None, "x")("she") == "she"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"rewrite": [{"pattern": "(", "replace": "x"}]}, "prompts.rewrite[0].pattern: not a valid regular expression"),
        ({"rewrite": [{"pattern": "a", "replace": "b", "flags": "i"}]}, "prompts.rewrite[0]: must be a mapping with"),
        ({"rewrite": [{"pattern": "a", "replace": r"\1"}]}, "prompts.rewrite[0].replace: must not contain"),
        ({"rewrite": [{"pattern": "", "replace": "b"}]}, "prompts.rewrite[0]: pattern must be a non-empty string"),
        ({"rewrite": {"pattern": "a", "replace": "b"}}, "prompts.rewrite: must be a list"),
        ({"synonyms": []}, "prompts.synonyms: unknown key"),
    ],
)
def test_malformed_prompt_rewrites_name_the_entry(tmp_path: Path, value: object, message: str) -> None:
    data = copy.deepcopy(_rules_yaml())
    data["prompts"] = value
    bad = tmp_path / "captions.yaml"
    bad.write_text(yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False))
    with pytest.raises(ValueError) as info:
        CaptionRules.load(bad)
    assert str(info.value).startswith(f"{bad}: ") and message in str(info.value) and "\n" not in str(info.value)
