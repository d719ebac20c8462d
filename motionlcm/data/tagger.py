"""A small deterministic part-of-speech tagger for captions, standing in for spaCy 2.3 (en_core_web_sm).

It produces HumanML3D's token field (`word/POS ...`, lemmas for nouns and verbs except "left") from a
built-in lexicon plus a few context rules; docs/captions.md states its rules and limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["LEXICON", "POS_TAGS", "TaggedToken", "pos_tag", "tag_tokens", "tokenize"]

# =========================================================================== lexicon
# Coarse universal POS tags as spaCy 2.3 (en_core_web_sm) gives them for HumanML3D: its English tag map sends
# the PTB tag IN (prepositions *and* subordinators: as, if, while, before) and RP (particles: up, down, out)
# to ADP, and possessive pronouns (his, their) come out DET. SCONJ is therefore never produced.

_CLOSED: dict[str, str] = {
    "DET": "a an the this that these those both each every all some any no another either neither his her "
    "their its my your our which whose",
    "PRON": "i me you he him she it we us they them myself yourself himself herself itself ourselves "
    "themselves themself someone somebody something anyone anybody anything everyone everybody everything "
    "her nobody nothing noone who whom what whatever whoever mine yours hers theirs ours there",
    "ADP": "with in on at to from into onto over under above below behind beside besides between through "
    "throughout across along around about against among toward towards upon within without of off out up "
    "down near past via during after before since until till like as if while because though although "
    "whether than unlike despite except beyond inside outside underneath beneath alongside amid per",
    "CCONJ": "and or but nor plus",
    "PART": "not",
    "AUX": "is are was were am be been being can could will would shall should may might must ca wo do "
    "does did have has had",
    "NUM": "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen twenty thirty forty fifty hundred thousand",
    "INTJ": "hello hi bye oh ok okay yes wow hey yeah",
    "ADV": "forward forwards backward backwards ahead away back sideways upward upwards downward downwards "
    "inward inwards outward outwards together apart again around here there where when how why once twice "
    "then now later soon first finally almost slightly very quite really too also only just still even "
    "never always often sometimes fast hard high low far close clockwise counterclockwise anticlockwise "
    "straight well so rather somewhat more most less least further farther afterwards meanwhile instead "
    "forth aside overhead halfway behind inside outside else ago",
    "ADJ": "left right several few many much other same different own original small large big little long "
    "short tall high low wide narrow slow fast quick heavy light straight front upper lower full whole "
    "entire single double certain next last first second third final previous initial normal natural "
    "ordinary relaxed tired exhausted elderly old young youthful energetic lively feminine masculine manly "
    "strong weak bouncy happy cheerful joyful sad unhappy gloomy depressed angry furious irritated proud "
    "confident unconfident timid shy insecure unsure nervous hesitant cautious exaggerated musical "
    "theatrical dramatic giant huge steady dejected delinquent tough playful childish childlike calm "
    "gentle graceful elegant stiff powerful clumsy careful casual brisk sluggish lazy active quiet loud "
    "excited scared afraid sleepy drunk injured wounded dizzy diagonal vertical horizontal circular "
    "clockwise counterclockwise anticlockwise upright open ready broad deep sharp soft smooth rapid gradual "
    "sudden brief slight tiny great good bad "
    "nice funny silly strange weird awkward aggressive loose tight flat easy simple random opposite "
    "alternate continuous repeated hunched such",
}

_ADVERBS_LY = (
    "slowly quickly gently lightly heavily carefully casually normally naturally energetically actively "
    "vigorously wearily sluggishly gracefully boldly firmly playfully happily cheerfully joyfully sadly "
    "gloomily angrily furiously forcefully proudly confidently timidly hesitantly nervously theatrically "
    "dramatically ponderously arrogantly menacingly stiffly briskly alternately rhythmically freely quietly "
    "loudly smoothly rapidly simultaneously repeatedly continuously briefly suddenly gradually abruptly "
    "immediately eventually swiftly steadily lazily awkwardly clumsily tiredly weakly strongly powerfully "
    "elegantly calmly diagonally partially fully completely mostly barely really nearly directly shyly "
    "aggressively cautiously sharply softly loosely tightly excitedly"
)

# Nouns with a regular plural unless listed in _PLURALS.
_NOUNS = (
    "head neck shoulder arm elbow wrist hand finger thumb palm fist chest back torso waist hip stomach belly "
    "leg knee ankle foot toe heel thigh shin calf face eye ear mouth chin nose spine body side front top "
    "bottom lap person man woman child kid boy girl human figure performer dancer athlete player thug giant "
    "zombie robot monkey animal bird soldier boxer fighter ninja musical line path direction way distance "
    "angle degree routine series combination combo set round lap time moment minute beginning end middle "
    "speed rhythm beat music song tempo manner style mood attitude energy confidence emotion feeling "
    "attention goodbye greeting place spot area room ground floor air wall door chair table stair staircase "
    "box ball object item thing cup bottle phone sword stick rope bag hat weapon shield lot bit couple "
    "pair half movement position posture stance reply left right light second circle curve"
)
_PLURALS = {
    "foot": "feet", "person": "people", "man": "men", "woman": "women", "child": "children",
    "calf": "calves", "half": "halves", "series": "series",
}  # fmt: skip

# Verbs; their -s, -ing and past forms are generated (irregular ones in _IRREGULAR, doubled final consonant in
# _DOUBLE). Nouns that are also verbs (walk, kick, wave) are listed in both _NOUNS_VERBS.
_VERBS = (
    "go come stop begin continue stand sit lie kneel crouch bend raise lift lower drop put place hold grab "
    "pick carry cross look watch keep bring take make get give show lead guide beckon respond perform "
    "rotate sway rock bounce slide shift tilt flap flail fly float swim rise try seem appear use repeat "
    "return touch tap rub scratch wipe brush cover open close fold extend hug stamp tiptoe puff droop hang "
    "drag draw play celebrate cheer imitate mimic pretend act attempt want need finish complete prepare "
    "straighten swagger lumber limp stumble stagger wobble sneak creep climb approach enter exit strike hit "
    "chop stab fight defend block dodge duck say tell greet relax stay wait fall land trip feel see hear "
    "hurry slash wear throw shake move lose start end"
)
_NOUNS_VERBS = (
    "walk run jog sprint dash turn circle curve step stride pace spin twist pivot jump hop skip leap kick "
    "punch bow wave dance gesture motion swing stretch squat lunge push pull catch reach lean shuffle stomp "
    "clap salute nod signal call answer reply rest pose balance exercise head face point march stroll rush "
    "shake throw move start end"
)
_IRREGULAR = {
    "go": "goes going went gone", "come": "comes coming came come", "stand": "stands standing stood stood",
    "sit": "sits sitting sat sat", "lie": "lies lying lay lain", "kneel": "kneels kneeling knelt knelt",
    "bend": "bends bending bent bent", "hold": "holds holding held held", "put": "puts putting put put",
    "take": "takes taking took taken", "make": "makes making made made", "get": "gets getting got gotten",
    "give": "gives giving gave given", "bring": "brings bringing brought brought",
    "keep": "keeps keeping kept kept", "lead": "leads leading led led", "show": "shows showing showed shown",
    "fly": "flies flying flew flown", "swim": "swims swimming swam swum", "rise": "rises rising rose risen",
    "hang": "hangs hanging hung hung", "draw": "draws drawing drew drawn",
    "strike": "strikes striking struck struck",
    "hit": "hits hitting hit hit", "say": "says saying said said", "tell": "tells telling told told",
    "fall": "falls falling fell fallen", "feel": "feels feeling felt felt", "see": "sees seeing saw seen",
    "hear": "hears hearing heard heard", "wear": "wears wearing wore worn",
    "throw": "throws throwing threw thrown",
    "shake": "shakes shaking shook shaken", "lose": "loses losing lost lost", "run": "runs running ran run",
    "spin": "spins spinning spun spun", "swing": "swings swinging swung swung",
    "leap": "leaps leaping leapt leapt",
    "catch": "catches catching caught caught", "begin": "begins beginning began begun",
    "stride": "strides striding strode stridden", "slide": "slides sliding slid slid",
    "do": "does doing did done", "have": "has having had had",
}  # fmt: skip
_DOUBLE = set(
    "step hop skip jog drop tap flap clap trip stop grab drag nod sit put get hit spin swim begin set cut "
    "chop stab rub hug plan slip dip pat swap strip jab wag flip shrug".split()
)
# Words with a fixed single analysis that generated forms must not override.
_FIXED: dict[str, tuple[str, str]] = {
    "slows": ("VERB", "slow"), "slowing": ("VERB", "slow"), "slowed": ("VERB", "slow"),
    "lots": ("NOUN", "lot"), "something": ("PRON", "something"), "nothing": ("PRON", "nothing"),
    "anything": ("PRON", "anything"), "everything": ("PRON", "everything"), "during": ("ADP", "during"),
    "cannot": ("AUX", "can"),
}  # fmt: skip

_CLAUSE_OPENERS = frozenset(
    "while as if before after until till because when who that which so though although".split()
)  # a new clause starts after these: its verb slot is open again
_POSSESSIVE = frozenset("his her their its my your our whose 's".split())
_BE = frozenset("is are was were am be been being".split())
POS_TAGS = (
    "NOUN", "VERB", "ADJ", "ADV", "ADP", "DET", "PRON",
    "CCONJ", "SCONJ", "AUX", "NUM", "PART", "PROPN", "INTJ",
)  # fmt: skip
"""The coarse universal tags of HumanML3D token fields (SCONJ is never produced, see above)."""


def _plural(noun: str) -> str:
    if noun in _PLURALS:
        return _PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _verb_forms(base: str) -> tuple[str, str, str, str]:
    """(-s, -ing, past, past participle) of a verb."""
    if base in _IRREGULAR:
        s, ing, past, part = _IRREGULAR[base].split()
        return s, ing, past, part
    s = base + "es" if base.endswith(("s", "sh", "ch", "x", "z", "o")) else base + "s"
    if base.endswith("y") and base[-2] not in "aeiou":
        s = base[:-1] + "ies"
    if base.endswith("ie"):
        ing = base[:-2] + "ying"
    elif base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        ing = base[:-1] + "ing"
    else:
        ing = base + base[-1] + "ing" if base in _DOUBLE else base + "ing"
    if base.endswith("e"):
        past = base + "d"
    elif base.endswith("y") and base[-2] not in "aeiou":
        past = base[:-1] + "ied"
    else:
        past = base + base[-1] + "ed" if base in _DOUBLE else base + "ed"
    return s, ing, past, past


def _build_lexicon() -> dict[str, tuple[tuple[str, str], ...]]:
    lex: dict[str, list[tuple[str, str]]] = {}

    def add(word: str, pos: str, lemma: str) -> None:
        entry = lex.setdefault(word, [])
        if (pos, lemma) not in entry:
            entry.append((pos, lemma))

    for pos, words in _CLOSED.items():
        for word in words.split():
            add(word, pos, word)
    for word in _ADVERBS_LY.split():
        add(word, "ADV", word)
    for noun in set(_NOUNS.split()) | set(_NOUNS_VERBS.split()):
        add(noun, "NOUN", noun)
        add(_plural(noun), "NOUN", noun)
    for verb in _ALL_VERBS:
        add(verb, "VERB", verb)
        for form in _verb_forms(verb):
            add(form, "VERB", verb)
    for word, analysis in _FIXED.items():
        lex[word] = [analysis]
    for side in ("left", "right"):  # never the past tense of "leave", never lemmatized
        lex[side] = [("ADJ", side), ("NOUN", side), ("ADV", side)]
    return {word: tuple(entry) for word, entry in lex.items()}


_ALL_VERBS = set(_VERBS.split()) | set(_NOUNS_VERBS.split()) | {"do", "have"}
_PARTICIPLES = frozenset(_verb_forms(v)[3] for v in _ALL_VERBS)

LEXICON: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(_build_lexicon())
"""word -> its possible (POS, lemma) analyses; context rules pick one (see `tag_tokens`)."""


# =========================================================================== tokenizer and tagger


@dataclass(frozen=True)
class TaggedToken:
    """One token of a caption with its coarse POS tag and lemma.

    Attributes:
        text: the surface form.
        pos: coarse universal POS tag (PUNCT for punctuation and other non-alphabetic tokens).
        lemma: lower-case lemma.
        known: whether the word is in `LEXICON` (False: tagged by suffix heuristics).
    """

    text: str
    pos: str
    lemma: str
    known: bool


_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?|[^\sA-Za-z0-9]")


def tokenize(sentence: str) -> list[str]:
    """Hyphens removed, then spaCy-like pieces: words, digits, punctuation, clitics ('s, n't) split off."""
    tokens = []
    for piece in _TOKEN_RE.findall(sentence.replace("-", "")):
        low = piece.lower()
        if low.endswith("n't") and len(piece) > 3:
            tokens += [piece[:-3], piece[-3:]]
        elif "'" in piece:
            head, tail = piece.split("'", 1)
            tokens += [head, "'" + tail]
        elif low == "cannot":
            tokens += [piece[:3], piece[3:]]
        else:
            tokens.append(piece)
    return tokens


def _strip_suffix_lemma(stem: str) -> str:
    """Best-effort base form of a stem left after removing -ing / -ed."""
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfz":
        return stem[:-1]
    if stem.endswith(("v", "c", "z", "u")) or re.search(r"[^aeioulr]l$", stem):  # waving, dancing, juggling
        return stem + "e"
    return stem


def _guess(word: str) -> tuple[tuple[str, str], ...]:
    """Deterministic suffix heuristics for a word missing from the lexicon."""
    low = word.lower()
    if low.endswith("ly") and len(low) > 4:
        return (("ADV", low),)
    if low.endswith("ing") and len(low) > 5:
        return (("VERB", _strip_suffix_lemma(low[:-3])),)
    if low.endswith("ied") and len(low) > 4:
        return (("VERB", low[:-3] + "y"),)
    if low.endswith("ed") and len(low) > 4:
        return (("VERB", _strip_suffix_lemma(low[:-2])),)
    if low.endswith(("tion", "sion", "ment", "ness", "ity", "ance", "ence", "ist", "ism", "ship", "hood")):
        return (("NOUN", low),)
    if low.endswith(("ful", "ous", "ive", "able", "ible", "al", "ic", "less", "ish", "ary")):
        return (("ADJ", low),)
    if low.endswith("s") and not low.endswith(("ss", "us", "is")) and len(low) > 3:
        if low.endswith("ies"):
            base = low[:-3] + "y"
        else:
            base = low[:-2] if low.endswith(("ches", "shes", "xes")) else low[:-1]
        return (("NOUN", base), ("VERB", base))
    return (("NOUN", low), ("VERB", low))


@dataclass
class _State:
    """Left-to-right context of the tagger."""

    tags: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)
    verb_in_clause: bool = False
    verb_in_sentence: bool = False

    def prev(self, k: int = 1) -> tuple[str | None, str | None]:
        return (self.tags[-k], self.words[-k]) if len(self.tags) >= k else (None, None)


def _poses(analyses: Iterable[tuple[str, str]]) -> set[str]:
    return {pos for pos, _ in analyses}


def _analyses(word: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    low = word.lower()
    if not word.isalpha():
        return (("NUM", low),) if low.isdigit() else (("PUNCT", low),), True
    if low in LEXICON:
        return LEXICON[low], True
    return _guess(word), False


def _poses_of(word: str | None) -> set[str]:
    """The possible tags of a word (empty at the end of the sentence)."""
    return _poses(_analyses(word)[0]) if word is not None else set()


def _nounish(word: str | None) -> bool:
    """Whether a following word can head or modify a noun phrase (noun, or left/right)."""
    return "NOUN" in _poses_of(word) or (word or "").lower() in ("left", "right")


def _np_start(word: str | None) -> bool:
    pos = _poses_of(word)
    return bool(pos & {"DET", "PRON", "NUM", "NOUN", "ADJ"}) and "ADP" not in pos


def _is_base_verb(word: str | None) -> bool:
    if word is None:
        return False
    return any(pos == "VERB" and lemma == word.lower() for pos, lemma in _analyses(word)[0])


def _noun_or_verb(word: str, state: _State, next_word: str | None, analyses: tuple) -> str:
    prev_tag, prev_word = state.prev()
    low = word.lower()
    participle = any(pos == "VERB" and lemma != low for pos, lemma in analyses) and low.endswith("ing")
    if participle:  # "the standing person", "before going": spaCy keeps VBG as VERB
        return "NOUN" if prev_tag in ("DET", "ADJ") and not _nounish(next_word) else "VERB"
    if prev_tag is None or prev_tag in ("PRON", "AUX", "ADV", "INTJ", "PART") and prev_word != "'s":
        return "VERB"
    if prev_tag in ("DET", "ADJ", "NUM") or prev_word in _POSSESSIVE or prev_tag == "ADP":
        return "NOUN"
    if prev_tag in ("NOUN", "PROPN"):
        return "NOUN" if state.verb_in_clause else "VERB"
    if prev_tag == "VERB":  # "throws punches", "is flying kick"
        return "NOUN"
    if prev_tag in ("CCONJ", "PUNCT"):
        before, _ = state.prev(2)
        return "NOUN" if before == "NOUN" and not state.verb_in_sentence else "VERB"
    return "NOUN"


def _side(state: _State, next_word: str | None) -> str:
    """left/right: ADJ before a noun, NOUN after a determiner or preposition, ADV after a verb."""
    prev_tag, prev_word = state.prev()
    if _nounish(next_word) and (next_word or "").lower() not in ("left", "right"):
        return "ADJ"
    if prev_tag in ("DET", "ADJ", "ADP") or prev_word in _POSSESSIVE:
        return "NOUN"
    return "ADV"


def _choose(word: str, analyses: tuple, state: _State, next_word: str | None, after_next: str | None) -> str:
    """The POS of `word` in context."""
    low = word.lower()
    poses = _poses(analyses)
    prev_tag, prev_word = state.prev()
    if low in ("left", "right"):
        return _side(state, next_word)
    if low == "to":
        return "PART" if _is_base_verb(next_word) and not _np_start_only(next_word) else "ADP"
    if low in ("do", "does", "did"):
        nxt = after_next if (next_word or "").lower() in ("not", "n't") else next_word
        return "AUX" if _is_base_verb(nxt) and not (nxt or "").lower().endswith("ing") else "VERB"
    if low in ("have", "has", "had"):
        nxt = after_next if (next_word or "").lower() in ("not", "n't") else next_word
        return "AUX" if (nxt or "").lower() in _PARTICIPLES else "VERB"
    if len(poses) == 1:
        return next(iter(poses))
    if {"NOUN", "VERB"} <= poses:
        if "ADJ" in poses and prev_tag in ("DET", "ADJ") and _nounish(next_word):
            return "ADJ"
        return _noun_or_verb(word, state, next_word, analyses)
    if poses == {"ADJ", "NOUN"}:
        return "ADJ" if _nounish(next_word) else "NOUN"
    if poses == {"ADJ", "ADV"}:
        return "ADJ" if prev_tag in ("DET", "ADJ") or (_nounish(next_word) and prev_tag != "VERB") else "ADV"
    if poses == {"VERB", "ADJ"}:
        attributive = _nounish(next_word) and prev_tag not in ("NOUN", "PRON")
        return "ADJ" if prev_tag in ("DET", "ADJ") or prev_word in _BE or attributive else "VERB"
    if poses == {"ADV", "NOUN"}:  # back
        return "NOUN" if prev_tag in ("DET", "ADJ") or prev_word in _POSSESSIVE else "ADV"
    if poses == {"ADV", "ADP"}:  # around, behind, inside
        return "ADP" if _np_start(next_word) else "ADV"
    if poses == {"DET", "PRON"}:  # her, that
        return "DET" if _nounish(next_word) or "ADJ" in _poses_of(next_word) else "PRON"
    if poses == {"PRON", "ADV"}:  # there
        return "PRON" if (next_word or "").lower() in _BE else "ADV"
    return analyses[0][0]


def _np_start_only(word: str | None) -> bool:
    """A word after "to" that cannot be a verb here: a determiner, pronoun or number."""
    return bool(_poses_of(word) & {"DET", "PRON", "NUM"})


def _lemma(analyses: tuple, pos: str, low: str) -> str:
    for p, lemma in analyses:
        if p == pos:
            return lemma
    return low


def _update(state: _State, word: str, pos: str) -> None:
    low = word.lower()
    prev_tag, _ = state.prev()
    participle = low.endswith("ing") or prev_tag in ("DET", "ADJ", "ADP")
    if pos == "AUX" or (pos == "VERB" and not participle):  # a finite verb fills the clause's verb slot
        state.verb_in_clause = state.verb_in_sentence = True
    if pos == "CCONJ" or low in (",", ";", ":") or low in _CLAUSE_OPENERS:
        state.verb_in_clause = False
    if low in (".", "!", "?"):
        state.verb_in_clause = state.verb_in_sentence = False
    state.tags.append(pos)
    state.words.append(low)


def tag_tokens(sentence: str) -> list[TaggedToken]:
    """Tokenize and tag a sentence with the lexicon tagger (all tokens, punctuation included).

    Args:
        sentence: a caption; hyphens are removed first, as HumanML3D's `process_text` does.

    Returns:
        One `TaggedToken` per token; non-alphabetic tokens have pos "PUNCT" (or "NUM" for digits).
    """
    words = tokenize(sentence)
    state = _State()
    out = []
    for i, word in enumerate(words):
        analyses, known = _analyses(word)
        low = word.lower()
        if not word.isalpha():
            pos = analyses[0][0] if low != "'s" else "PART"
        elif word[0].isupper() and not known:  # an unknown capitalized word: a name
            pos, analyses = "PROPN", (("PROPN", word),)
        else:
            nxt = words[i + 1] if i + 1 < len(words) else None
            after = words[i + 2] if i + 2 < len(words) else None
            pos = _choose(word, analyses, state, nxt, after)
        out.append(TaggedToken(word, pos, _lemma(analyses, pos, low), known))
        _update(state, word, pos)
    return out


def pos_tag(caption: str) -> str:
    """HumanML3D tokens field of a caption: `word/POS` of its alphabetic tokens, NOUN/VERB lemmatized.

    This is our own deterministic lexicon tagger, not spaCy (see docs/captions.md for its limits).

    Args:
        caption: the caption text.

    Returns:
        Space-separated `word/POS` tokens, e.g. "a/DET person/NOUN walk/VERB forward/ADV".
    """
    parts = []
    for tok in tag_tokens(caption):
        if not tok.text.isalpha():
            continue
        word = tok.lemma if tok.pos in ("NOUN", "VERB") and tok.text != "left" else tok.text
        parts.append(f"{word}/{tok.pos}")
    return " ".join(parts)
