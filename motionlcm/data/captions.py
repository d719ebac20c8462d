"""Captions for labelled mocap clips in HumanML3D's text format: YAML caption rules, text lines with
word/POS tokens (from `motionlcm.data.tagger`), and left/right mirroring of captions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from motionlcm.data.tagger import LEXICON, pos_tag, tokenize
from motionlcm.io.text import read_text_file

__all__ = [
    "CaptionRules", "ClipLabel", "ContentRule", "StyleRule", "Phrase", "PromptRewrites", "format_text_line",
    "mirror_caption", "mirror_text_line", "pos_tag",
]  # fmt: skip


def format_text_line(caption: str, tokens: str, start: float = 0.0, end: float = 0.0) -> str:
    """One HumanML3D text line `caption#tokens#from#to` (from = to = 0.0: the whole clip).

    Raises:
        ValueError: the caption or tokens contain '#' or a line break.
    """
    for name, value in (("caption", caption), ("tokens", tokens)):
        if "#" in value or "\n" in value or "\r" in value:
            raise ValueError(f"{name} must not contain '#' or line breaks: {value!r}")
    return f"{caption}#{tokens}#{float(start)}#{float(end)}"


# =========================================================================== mirroring free text

_MIRROR_WORDS = {
    "left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise",
    "counter-clockwise": "clockwise", "anticlockwise": "clockwise", "anti-clockwise": "clockwise",
}  # fmt: skip
_MIRROR_RE = re.compile(
    r"(?<![A-Za-z0-9])(counter-clockwise|anti-clockwise|counterclockwise|anticlockwise|clockwise|left|right)"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[0].isupper():
        return word[0].upper() + word[1:]
    return word


def mirror_caption(text: str) -> str:
    """Swap left/right and clockwise/counterclockwise in free text, keeping case and punctuation.

    Whole words only ("leftover", "bright" are untouched; "left-handed" becomes "right-handed").
    "counter-clockwise", "anticlockwise" and "anti-clockwise" become "clockwise", whose mirror is
    "counterclockwise", so the function is an involution on texts that use clockwise/counterclockwise.
    """
    return _MIRROR_RE.sub(lambda m: _match_case(m.group(0), _MIRROR_WORDS[m.group(0).lower()]), text)


def mirror_text_line(line: str) -> str:
    """Mirror the caption and the tokens field of a `caption#tokens#from#to` line (trailing newline kept).

    Raises:
        ValueError: the line does not have 4 '#'-separated fields.
    """
    body = line.rstrip("\r\n")
    fields = body.split("#")
    if len(fields) != 4:
        raise ValueError(f"expected caption#tokens#from#to, got {len(fields)} fields: {body!r}")
    fields[0], fields[1] = mirror_caption(fields[0]), mirror_caption(fields[1])
    return "#".join(fields) + line[len(body) :]


# =========================================================================== prompt rewrites


@dataclass(frozen=True)
class PromptRewrites:
    """What a model reads a user's prompt as: regex -> replacement rewrites, applied in order before the
    prompt is encoded (`MotionLCM.read_prompt`).

    A model trained on rule-made captions knows their words only. Words its captions never use on purpose
    carry nothing it could have learnt and move the prompt's embedding off the captions it knows: the
    Bandai-Namco rules phrase styles as manners, never as identities, so "a woman raises her left arm" was
    read as something else (the left arm raised in 0 of 10 seeds, against 10 of 10 for "a person raises the
    left arm"; docs/benchmarks.md "What the model reads"). The rules file that made the captions lists such
    rewrites (`prompts.rewrite`, docs/captions.md); training records them in the model folder
    (`meta.prompt_rewrites`).

    Each rewrite is a pattern (Python regex, matched case-insensitively) and a literal replacement that takes
    the case of the matched text's first letter ("He" -> "The person").
    """

    rules: tuple[tuple[re.Pattern, str], ...] = ()

    @classmethod
    def from_list(cls, value: Any, where: str) -> PromptRewrites:
        """From `[{pattern: ..., replace: ...}, ...]` (None or [] for none); `where` names the source in the
        one-line ValueError a bad entry raises."""
        if value is None:
            return cls()
        if not isinstance(value, list):
            raise ValueError(f"{where}: must be a list of {{pattern, replace}} mappings")
        rules = []
        for i, item in enumerate(value):
            key = f"{where}[{i}]"
            if not isinstance(item, dict) or set(item) != {"pattern", "replace"}:
                raise ValueError(f"{key}: must be a mapping with exactly the keys pattern and replace")
            pattern, replace = item["pattern"], item["replace"]
            if not isinstance(pattern, str) or not pattern or not isinstance(replace, str):
                raise ValueError(f"{key}: pattern must be a non-empty string and replace a string")
            if any(c in replace for c in "#\n\r\\"):
                raise ValueError(f"{key}.replace: must not contain '#', a backslash or a line break: {replace!r}")
            try:
                compiled = re.compile(pattern, re.IGNORECASE)
            except re.error as error:
                raise ValueError(f"{key}.pattern: not a valid regular expression ({error}): {pattern!r}") from None
            rules.append((compiled, replace))
        return cls(tuple(rules))

    def to_list(self) -> list[dict[str, str]]:
        return [{"pattern": p.pattern, "replace": r} for p, r in self.rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __call__(self, text: str) -> str:
        for pattern, replace in self.rules:
            text = pattern.sub(lambda m, r=replace: _match_case(m.group(0), r) if r else r, text)
        return text


# =========================================================================== caption rules


@dataclass(frozen=True)
class Phrase:
    """A style phrase, optionally limited to contents of some groups (e.g. only locomotion)."""

    text: str
    only: tuple[str, ...] = ()

    def allowed(self, group: str) -> bool:
        return not self.only or group in self.only


@dataclass(frozen=True)
class ContentRule:
    """Caption rules of one content label (the action)."""

    phrases: tuple[str, ...]
    group: str = "other"
    mirror: str = ""
    turn: str | None = None


@dataclass(frozen=True)
class StyleRule:
    """Caption rules of one style label: the three placements of the style and the plain share."""

    adverbs: tuple[Phrase, ...] = ()
    manners: tuple[Phrase, ...] = ()
    subjects: tuple[Phrase, ...] = ()
    pre_adverbs: tuple[str, ...] = ()
    plain_fraction: float = 0.0


@dataclass(frozen=True)
class ClipLabel:
    """Labels parsed from a clip's file name.

    Attributes:
        content: the content (action) label, e.g. "walk-turn-left".
        style: the style label, e.g. "elderly".
        clip_id: the `clip_id` group of the pattern, or None if it has none.
        groups: every named group of the filename pattern.
    """

    content: str
    style: str
    clip_id: str | None
    groups: dict[str, str]


@dataclass(frozen=True)
class _Candidate:
    text: str
    subject: str
    phrase: str
    modifier: str | None
    placement: str


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available, same safe semantics
_TOP_KEYS = {"name", "filename_pattern", "captions_per_clip", "subjects", "contents", "styles", "prompts"}
_CONTENT_KEYS = {"phrases", "group", "mirror", "turn"}
_STYLE_KEYS = {"adverbs", "manners", "subjects", "pre_adverbs", "plain_fraction"}
_SIDE_RE = re.compile(r"\b(left|right|clockwise|counterclockwise|anticlockwise)\b")
_WEIGHTS = {"subject": 1, "phrase": 1, "modifier": 3, "placement": 1}


def _distinct(cands: list[_Candidate]) -> list[_Candidate]:
    """Candidates with distinct texts, first occurrence kept, order kept."""
    return list({c.text: c for c in cands}.values())


class _Validator:
    """Builds one-line ValueErrors `<source>: <key path>: <problem>`."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.source}: {key}: {problem}")

    def mapping(self, value: Any, key: str, allowed: set[str] | None = None, required: Iterable[str] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        for k in value:
            if allowed is not None and k not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(f"{key}.{k}" if key else str(k), f"unknown key (allowed: {known})")
        for k in sorted(required):
            if k not in value:
                raise self.fail(f"{key}.{k}" if key else k, "missing required key")
        return value

    def text(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        clean = value == value.strip().lower() and not any(c in value for c in "#\n\r")
        if not clean or value.endswith("."):
            raise self.fail(key, f"must be lower case, trimmed, without '#' or a final period: {value!r}")
        return value

    def texts(self, value: Any, key: str, non_empty: bool) -> tuple[str, ...]:
        if value is None and not non_empty:
            return ()
        if not isinstance(value, list) or (non_empty and not value):
            raise self.fail(key, "must be a non-empty list" if non_empty else "must be a list")
        return tuple(self.text(v, f"{key}[{i}]") for i, v in enumerate(value))

    def phrases(self, value: Any, key: str, groups: set[str]) -> tuple[Phrase, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(key, "must be a list")
        out = []
        for i, item in enumerate(value):
            sub = f"{key}[{i}]"
            if isinstance(item, dict):
                self.mapping(item, sub, {"text", "only"}, {"text"})
                only = self.texts(item.get("only"), f"{sub}.only", non_empty=True)
                for g in only:
                    if g not in groups:
                        known = ", ".join(sorted(groups))
                        raise self.fail(f"{sub}.only", f"unknown content group {g!r} (known: {known})")
                out.append(Phrase(self.text(item["text"], f"{sub}.text"), only))
            else:
                out.append(Phrase(self.text(item, sub)))
        return tuple(out)


def _per_clip(v: _Validator, value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    ints = isinstance(value, list) and len(value) == 2 and all(type(x) is int for x in value)
    if not ints or not 1 <= value[0] <= value[1]:
        raise v.fail("captions_per_clip", f"must be n >= 1 or [min, max], 1 <= min <= max: {value!r}")
    return value[0], value[1]


def _pattern(v: _Validator, value: Any) -> re.Pattern:
    if not isinstance(value, str) or not value:
        raise v.fail("filename_pattern", f"must be a non-empty regex string, got {value!r}")
    text = value
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise v.fail("filename_pattern", f"invalid regex {text!r}: {exc}") from None
    missing = {"content", "style"} - set(pattern.groupindex)
    if missing:
        raise v.fail("filename_pattern", f"needs named groups content and style; missing {sorted(missing)}")
    return pattern


def _content(v: _Validator, name: str, raw: Any) -> ContentRule:
    key = f"contents.{name}"
    raw = v.mapping(raw, key, _CONTENT_KEYS, {"phrases"})
    phrases = v.texts(raw.get("phrases"), f"{key}.phrases", non_empty=True)
    group = v.text(raw.get("group", "other"), f"{key}.group")
    mirror = v.text(raw.get("mirror", name), f"{key}.mirror")
    turn = raw.get("turn")
    if turn not in (None, "left", "right"):
        raise v.fail(f"{key}.turn", f"must be left, right or null, got {turn!r}")
    return ContentRule(phrases, group, mirror, turn)


def _style(v: _Validator, name: str, raw: Any, groups: set[str]) -> StyleRule:
    key = f"styles.{name}"
    raw = v.mapping(raw, key, _STYLE_KEYS)
    frac = raw.get("plain_fraction", 0.0)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0.0 <= frac <= 1.0:
        raise v.fail(f"{key}.plain_fraction", f"must be a number in [0, 1], got {frac!r}")
    rule = StyleRule(
        adverbs=v.phrases(raw.get("adverbs"), f"{key}.adverbs", groups),
        manners=v.phrases(raw.get("manners"), f"{key}.manners", groups),
        subjects=v.phrases(raw.get("subjects"), f"{key}.subjects", groups),
        pre_adverbs=v.texts(raw.get("pre_adverbs"), f"{key}.pre_adverbs", non_empty=False),
        plain_fraction=float(frac),
    )
    if rule.pre_adverbs and not rule.subjects:
        raise v.fail(f"{key}.pre_adverbs", "needs subjects (a pre_adverb follows an adjective subject)")
    if frac < 1.0 and not (rule.adverbs or rule.manners or rule.subjects):
        raise v.fail(key, "needs at least one of adverbs, manners, subjects (or plain_fraction: 1)")
    for phrase in rule.adverbs + rule.manners + rule.subjects:
        if _SIDE_RE.search(phrase.text):
            raise v.fail(key, f"style phrases must not name a side (they are not mirrored): {phrase.text!r}")
    return rule


def _prompts(v: _Validator, value: Any) -> PromptRewrites:
    if value is None:
        return PromptRewrites()
    raw = v.mapping(value, "prompts", {"rewrite"})
    return PromptRewrites.from_list(raw.get("rewrite"), f"{v.source}: prompts.rewrite")


def _check_mirrors(v: _Validator, contents: dict[str, ContentRule]) -> None:
    swap = {"left": "right", "right": "left", None: None}
    for name, rule in contents.items():
        key = f"contents.{name}.mirror"
        if rule.mirror not in contents:
            raise v.fail(key, f"unknown content {rule.mirror!r}")
        partner = contents[rule.mirror]
        if partner.mirror != name:
            raise v.fail(key, f"{name} -> {rule.mirror} but {rule.mirror} -> {partner.mirror} (not mutual)")
        if partner.turn != swap[rule.turn]:
            turns = f"{rule.turn!r} but mirror {rule.mirror} has {partner.turn!r}"
            raise v.fail(f"contents.{name}.turn", turns)
        if rule.mirror == name:
            for phrase in rule.phrases:
                if _SIDE_RE.search(phrase):
                    raise v.fail(f"contents.{name}.phrases", f"names a side, mirrors to itself: {phrase!r}")


@dataclass(frozen=True)
class CaptionRules:
    """Caption rules of one mocap library: file-name labels -> HumanML3D captions (schema: docs/captions.md).

    Attributes:
        filename_pattern: regex with named groups `content` and `style` (optionally `clip_id`), full match.
        captions_per_clip: (min, max) captions per clip.
        subjects: generic subjects ("a person", "someone").
        contents: content label -> its rule.
        styles: style label -> its rule.
        name: a free-text name of the rules.
        source: where the rules came from (file path), used in error messages.
        prompt_rewrites: how models trained on these captions read users' prompts (`prompts.rewrite`).
    """

    filename_pattern: re.Pattern
    captions_per_clip: tuple[int, int]
    subjects: tuple[str, ...]
    contents: Mapping[str, ContentRule]
    styles: Mapping[str, StyleRule]
    name: str = ""
    source: str = "<rules>"
    prompt_rewrites: PromptRewrites = PromptRewrites()

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path) -> CaptionRules:
        """Load and validate a caption rules YAML file.

        Raises:
            ValueError: one line naming the file and the bad key or value.
        """
        path = Path(path)
        try:
            data = yaml.load(read_text_file(path, "caption rules file"), Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"{path}: invalid YAML: {first}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<rules>") -> CaptionRules:
        """Validate a parsed rules mapping (the YAML document) and build the rules."""
        v = _Validator(source)
        data = v.mapping(data, "", _TOP_KEYS, {"filename_pattern", "subjects", "contents", "styles"})
        contents_raw = v.mapping(data["contents"], "contents")
        styles_raw = v.mapping(data["styles"], "styles")
        if not contents_raw or not styles_raw:
            raise v.fail("contents" if not contents_raw else "styles", "must not be empty")
        contents = {str(k): _content(v, str(k), raw) for k, raw in contents_raw.items()}
        _check_mirrors(v, contents)
        groups = {rule.group for rule in contents.values()}
        styles = {str(k): _style(v, str(k), raw, groups) for k, raw in styles_raw.items()}
        subjects = v.texts(data["subjects"], "subjects", non_empty=True)
        for s in subjects:
            if _SIDE_RE.search(s):
                raise v.fail("subjects", f"must not name a side: {s!r}")
        return cls(
            filename_pattern=_pattern(v, data["filename_pattern"]),
            captions_per_clip=_per_clip(v, data.get("captions_per_clip", [3, 4])),
            subjects=subjects,
            contents=MappingProxyType(contents),
            styles=MappingProxyType(styles),
            name=str(data.get("name", "")),
            source=source,
            prompt_rewrites=_prompts(v, data.get("prompts")),
        )

    # ------------------------------------------------------------------ labels

    def _content(self, content: str, where: str = "") -> ContentRule:
        if content not in self.contents:
            known = ", ".join(sorted(self.contents))
            raise ValueError(f"{where}unknown content {content!r} (known: {known})")
        return self.contents[content]

    def _style(self, style: str, where: str = "") -> StyleRule:
        if style not in self.styles:
            known = ", ".join(sorted(self.styles))
            raise ValueError(f"{where}unknown style {style!r} (known: {known})")
        return self.styles[style]

    def parse_name(self, stem: str | Path) -> ClipLabel | None:
        """Labels from a clip's file name (stem; a path or a name with an extension also works).

        Returns:
            The labels, or None when the name does not match `filename_pattern`.

        Raises:
            ValueError: the name matches but its content or style is not in the rules.
        """
        stem = Path(stem).name
        m = self.filename_pattern.fullmatch(stem)
        if m is None and "." in stem:
            stem = stem.rsplit(".", 1)[0]
            m = self.filename_pattern.fullmatch(stem)
        if m is None:
            return None
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        self._content(groups["content"], f"{stem}: ")
        self._style(groups["style"], f"{stem}: ")
        return ClipLabel(groups["content"], groups["style"], groups.get("clip_id"), groups)

    def mirror_content(self, content: str) -> str:
        """The content label of the mirror image: walk-turn-left -> walk-turn-right, walk -> walk."""
        return self._content(content).mirror

    def turn(self, content: str) -> str | None:
        """The turn the content label claims: "left", "right" or None (no turn)."""
        return self._content(content).turn

    # ------------------------------------------------------------------ captions

    def _candidates(self, content: str, style: str) -> tuple[list[_Candidate], list[_Candidate]]:
        """(plain, styled) caption candidates, in a fixed order, distinct texts."""
        crule, srule = self._content(content), self._style(style)
        plain = [_Candidate(f"{s} {p}", s, p, None, "plain") for p in crule.phrases for s in self.subjects]
        styled = []
        for placement, items in (("adverb", srule.adverbs), ("manner", srule.manners)):
            for item in (i for i in items if i.allowed(crule.group)):
                styled += [
                    _Candidate(f"{s} {p} {item.text}", s, p, item.text, placement)
                    for p in crule.phrases
                    for s in self.subjects
                ]
        for subj in (i for i in srule.subjects if i.allowed(crule.group)):
            for pre in (None, *srule.pre_adverbs):
                mod = subj.text if pre is None else f"{subj.text} {pre}"
                styled += [_Candidate(f"{mod} {p}", subj.text, p, mod, "subject") for p in crule.phrases]
        return _distinct(plain), _distinct(styled)

    @staticmethod
    def _overlap(cand: _Candidate, chosen: list[_Candidate]) -> int:
        score = 0
        for c in chosen:
            score += _WEIGHTS["subject"] * (c.subject == cand.subject)
            score += _WEIGHTS["phrase"] * (c.phrase == cand.phrase)
            score += _WEIGHTS["modifier"] * (cand.modifier is not None and c.modifier == cand.modifier)
            score += _WEIGHTS["placement"] * (c.placement == cand.placement)
        return score

    def _pick(self, pool: list[_Candidate], chosen: list[_Candidate], rng: np.random.Generator) -> _Candidate:
        free = [c for c in pool if c not in chosen]
        scores = [self._overlap(c, chosen) for c in free]
        low = min(scores)
        best = [c for c, s in zip(free, scores, strict=True) if s == low]
        return best[int(rng.integers(len(best)))]

    def captions(self, content: str, style: str, rng: np.random.Generator, n: int | None = None) -> list[str]:
        """Distinct captions of one clip, lower case with a final period.

        Captions are `<subject> <action phrase> <style>` in one of three placements (adverb or manner clause
        after the action phrase, or an adjective subject), chosen to differ from each other as much as the
        rules allow. For a style with `plain_fraction` f, n * f (rounded half up) captions carry no style.
        For a mirrored clip pass `mirror_content(content)`.

        Args:
            content: content label.
            style: style label.
            rng: the random generator; the result is a deterministic function of its state.
            n: number of captions; default drawn from `captions_per_clip`.

        Raises:
            ValueError: unknown content/style, or the rules cannot give n distinct captions.
        """
        if n is None:
            lo, hi = self.captions_per_clip
            n = int(rng.integers(lo, hi + 1))
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        plain, styled = self._candidates(content, style)
        n_plain = int(n * self.styles[style].plain_fraction + 0.5)
        if n_plain > len(plain) or n - n_plain > len(styled):
            raise ValueError(
                f"{self.source}: content {content!r} style {style!r}: cannot make {n} distinct "
                f"captions ({len(plain)} plain, {len(styled)} styled candidates)"
            )
        kinds = [("plain", "styled")[k >= n_plain] for k in range(n)]
        chosen: list[_Candidate] = []
        for k in rng.permutation(n):
            chosen.append(self._pick(plain if kinds[k] == "plain" else styled, chosen, rng))
        return [c.text + "." for c in chosen]

    def text_lines(self, content: str, style: str, rng: np.random.Generator, n: int | None = None) -> list[str]:
        """The clip's HumanML3D text lines `caption#tokens#0.0#0.0` (see `captions`)."""
        return [format_text_line(c, pos_tag(c)) for c in self.captions(content, style, rng, n)]

    # ------------------------------------------------------------------ checks for rule authors

    def vocabulary(self) -> set[str]:
        """Every lower-case alphabetic word any caption of these rules can contain."""
        texts = list(self.subjects)
        for rule in self.contents.values():
            texts += rule.phrases
        for rule in self.styles.values():
            texts += [p.text for p in rule.adverbs + rule.manners + rule.subjects] + list(rule.pre_adverbs)
        return {t.lower() for text in texts for t in tokenize(text) if t.isalpha()}

    def unknown_words(self) -> set[str]:
        """Words of `vocabulary()` missing from the tagger's lexicon (tagged by heuristics only)."""
        return {w for w in self.vocabulary() if w not in LEXICON}
