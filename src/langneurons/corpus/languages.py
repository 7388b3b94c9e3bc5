"""Language labels: ISO 639-3 code + ISO 15924 script (``mlt_Latn``), with the aliases people type.

``normalize_language`` turns ``mt``, ``mlt``, ``MLT_latn`` or ``mlt-Latn`` into ``mlt_Latn`` so that a neuron
set, a statistics file and a corpus agree on one name. Knowledge comes from two places:

- a built-in table of ~130 common languages (ISO 639-1 -> 639-3 + default script, English name), which uses
  the individual-language codes of FLORES-200/GlotCC (``lv`` -> ``lvs_Latn``, ``et`` -> ``ekk_Latn``,
  ``ne`` -> ``npi_Deva``, ``zh`` -> ``cmn_Hans``, ``ar`` -> ``arb_Arab``) and maps macrolanguage codes
  (``lav``, ``est``, ``nep``, ``zho`` ...) onto them;
- once the UDHR has been fetched (``fetch_udhr``), the aliases derived from its index (ISO 639-3 code and
  BCP 47 tag of each of its ~450 languages; see ``udhr.py``). Before that, a rare bare code such as ``cri``
  has no known script and is returned unchanged; corpora still match it to ``cri_Latn``
  (see ``resolve_language``).

A label that does not look like a language code (``legal``, ``python``, ``deu_1996``) is returned unchanged,
so that a pool can hold any named corpus.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from typing import Any

from ..core.atomic import read_json
from ..core.errors import LangNeuronsError
from ..core.outputs import plain_name
from ..core.paths import UDHR_REFETCH, udhr_index_path

# ISO 639-1 (or -), ISO 639-3 individual language, default script, English name.
_TABLE = """
af afr Latn Afrikaans
am amh Ethi Amharic
ar arb Arab Arabic
as asm Beng Assamese
az azj Latn Azerbaijani
ba bak Cyrl Bashkir
be bel Cyrl Belarusian
bg bul Cyrl Bulgarian
bn ben Beng Bengali
bo bod Tibt Tibetan
br bre Latn Breton
bs bos Latn Bosnian
ca cat Latn Catalan
cs ces Latn Czech
cy cym Latn Welsh
da dan Latn Danish
de deu Latn German
el ell Grek Greek
en eng Latn English
eo epo Latn Esperanto
es spa Latn Spanish
et ekk Latn Estonian
eu eus Latn Basque
fa pes Arab Persian
fi fin Latn Finnish
fo fao Latn Faroese
fr fra Latn French
fy fry Latn Western Frisian
ga gle Latn Irish
gd gla Latn Scottish Gaelic
gl glg Latn Galician
gn grn Latn Guarani
gu guj Gujr Gujarati
ha hau Latn Hausa
he heb Hebr Hebrew
hi hin Deva Hindi
hr hrv Latn Croatian
ht hat Latn Haitian Creole
hu hun Latn Hungarian
hy hye Armn Armenian
id ind Latn Indonesian
ig ibo Latn Igbo
is isl Latn Icelandic
it ita Latn Italian
ja jpn Jpan Japanese
jv jav Latn Javanese
ka kat Geor Georgian
kk kaz Cyrl Kazakh
km khm Khmr Khmer
kn kan Knda Kannada
ko kor Hang Korean
ku kmr Latn Kurdish (Kurmanji)
ky kir Cyrl Kyrgyz
la lat Latn Latin
lb ltz Latn Luxembourgish
lo lao Laoo Lao
lt lit Latn Lithuanian
lv lvs Latn Latvian
mg plt Latn Malagasy
mi mri Latn Maori
mk mkd Cyrl Macedonian
ml mal Mlym Malayalam
mn khk Cyrl Mongolian
mr mar Deva Marathi
ms zsm Latn Malay
mt mlt Latn Maltese
my mya Mymr Burmese
nb nob Latn Norwegian Bokmal
ne npi Deva Nepali
nl nld Latn Dutch
nn nno Latn Norwegian Nynorsk
no nob Latn Norwegian Bokmal
ny nya Latn Chichewa
oc oci Latn Occitan
om gaz Latn Oromo
or ory Orya Odia
pa pan Guru Punjabi
pl pol Latn Polish
ps pbt Arab Pashto
pt por Latn Portuguese
qu quy Latn Quechua
rm roh Latn Romansh
ro ron Latn Romanian
ru rus Cyrl Russian
rw kin Latn Kinyarwanda
sa san Deva Sanskrit
sd snd Arab Sindhi
si sin Sinh Sinhala
sk slk Latn Slovak
sl slv Latn Slovenian
sm smo Latn Samoan
sn sna Latn Shona
so som Latn Somali
sq als Latn Albanian
sr srp Cyrl Serbian
st sot Latn Southern Sotho
su sun Latn Sundanese
sv swe Latn Swedish
sw swh Latn Swahili
ta tam Taml Tamil
te tel Telu Telugu
tg tgk Cyrl Tajik
th tha Thai Thai
ti tir Ethi Tigrinya
tk tuk Latn Turkmen
tl tgl Latn Tagalog
tn tsn Latn Tswana
tr tur Latn Turkish
tt tat Cyrl Tatar
ug uig Arab Uyghur
uk ukr Cyrl Ukrainian
ur urd Arab Urdu
uz uzn Latn Uzbek
vi vie Latn Vietnamese
xh xho Latn Xhosa
yi ydd Hebr Yiddish
yo yor Latn Yoruba
zh cmn Hans Chinese (Mandarin)
zu zul Latn Zulu
-  ceb Latn Cebuano
-  fil Latn Filipino
-  yue Hant Cantonese
-  ckb Arab Central Kurdish
-  azb Arab South Azerbaijani
-  prs Arab Dari
-  zlm Latn Malay (individual language)
-  nso Latn Northern Sotho
-  ast Latn Asturian
"""
_BUILTIN = [line.split(maxsplit=3) for line in _TABLE.strip().splitlines()]

# Macrolanguage and ISO 639-2/B codes -> the individual-language code used in the table above.
_CODE_ALIASES: dict[str, str] = {
    "lav": "lvs", "est": "ekk", "nep": "npi", "zho": "cmn", "chi": "cmn", "ara": "arb", "fas": "pes",
    "per": "pes", "msa": "zsm", "may": "zsm", "swa": "swh", "uzb": "uzn", "aze": "azj", "mon": "khk",
    "pus": "pbt", "sqi": "als", "alb": "als", "yid": "ydd", "orm": "gaz", "que": "quy", "kur": "kmr",
    "mlg": "plt", "ori": "ory", "nor": "nob", "ger": "deu", "fre": "fra", "dut": "nld", "gre": "ell",
    "cze": "ces", "slo": "slk", "rum": "ron", "wel": "cym", "mac": "mkd", "bur": "mya", "arm": "hye",
    "geo": "kat", "ice": "isl", "baq": "eus", "tib": "bod", "mao": "mri",
}

_ISO1 = {iso1: iso3 for iso1, iso3, _, _ in _BUILTIN if iso1 != "-"}
_DEFAULT_SCRIPT = {iso3: script for _, iso3, script, _ in _BUILTIN}
_NAMES = {iso3: name for _, iso3, _, name in _BUILTIN}

# ll, lll, ll-Ssss, lll_Ssss, optionally followed by a region (pt-BR, es_419), any case.
_CODE_RE = re.compile(r"^([a-z]{2,3})(?:[-_]([a-z]{4}))?(?:[-_](?:[a-z]{2}|\d{3}))?$", re.IGNORECASE)
_NOT_LANGUAGES = {"und", "mis", "mul", "zxx"}


def builtin_iso(code: str) -> str:
    """Map ISO 639-1, macrolanguage and 639-2/B codes onto the table's 639-3 code (built-in table only)."""
    code = code.lower()
    return _CODE_ALIASES.get(code, _ISO1.get(code, code))


def default_script(iso: str) -> str | None:
    """The usual script of a language of the built-in table (``kat`` -> ``Geor``), or None."""
    return _DEFAULT_SCRIPT.get(iso)


def iso639_3(code: str) -> str | None:
    """The individual-language ISO 639-3 code for a 2- or 3-letter code, or None when unknown."""
    code = builtin_iso(code)
    if code in _DEFAULT_SCRIPT:
        return code
    label = _udhr_aliases().get(code)
    return label.split("_")[0] if label else None


def normalize_language(code: str) -> str:
    """``mt``/``mlt``/``MLT_latn``/``mlt-Latn`` -> ``mlt_Latn``; labels that are not codes stay unchanged.

    Why: statistics files, neuron sets and corpora must agree on one name per language, whatever was typed.
    A region subtag is dropped (``pt-BR`` -> ``por_Latn``); an explicit script is kept (``uzn_Cyrl``).
    """
    label = code.strip()
    if not label:
        raise LangNeuronsError("empty language label; pass an ISO code such as 'mt' or 'mlt_Latn'")
    plain_name(label, "language label")  # labels name files (statistics, runs, results): never a path
    match = _CODE_RE.match(label)
    if match is None or match.group(1).lower() in _NOT_LANGUAGES:
        return label
    prefix, script = match.group(1).lower(), match.group(2)
    iso = iso639_3(prefix)
    if script:
        return f"{iso or prefix}_{script.title()}"
    if iso is None:
        return label
    if iso in _DEFAULT_SCRIPT:
        return f"{iso}_{_DEFAULT_SCRIPT[iso]}"
    return _udhr_aliases()[iso]


def language_name(code: str) -> str | None:
    """English name of a language label (``mlt_Latn`` -> ``Maltese``), or None for non-language labels."""
    label = normalize_language(code)
    if not _CODE_RE.match(label):
        return None
    iso = label.split("_")[0]
    if iso in _NAMES:
        return _NAMES[iso]
    return _udhr_names().get(label) or _udhr_names().get(iso)


def resolve_language(code: str, available: Iterable[str], *, corpus: str) -> str:
    """Map a user's label onto one of a corpus's ``available`` labels, or fail listing the closest ones.

    A bare code whose script is unknown here (``cri`` before the UDHR is cached) matches the corpus's only
    label with that ISO code (``cri_Latn``); an explicit script must match exactly.
    """
    available = sorted(available)
    label = normalize_language(code)
    if label in available:
        return label
    if "_" not in label:
        same = [a for a in available if a.split("_")[0] == label.lower()]
        if len(same) == 1:
            return same[0]
    raise LangNeuronsError(
        f"language {code!r} is not in corpus {corpus}; closest available: "
        f"{', '.join(closest_languages(label, available)) or 'none'} ({len(available)} languages in all)"
    )


def unique_languages(codes: Iterable[str], *, what: str = "--languages") -> list[str]:
    """The labels with aliases resolved (``mt`` -> ``mlt_Latn``), refusing one language given twice."""
    labels, seen = [], {}
    for code in codes:
        label = normalize_language(code)
        if label in seen:
            raise LangNeuronsError(f"{what} names {label} twice ({seen[label]!r} and {code!r}); give each language once")
        seen[label] = code
        labels.append(label)
    return labels


def resolve_languages(codes: Iterable[str], corpus: Any, *, what: str = "--languages") -> list[str]:
    """Each label resolved onto ``corpus``'s (a ``Corpus``) own, once each; a label it lacks is refused."""
    available = corpus.languages()
    return unique_languages([resolve_language(code, available, corpus=corpus.name) for code in codes], what=what)


def closest_languages(label: str, available: Iterable[str], n: int = 5) -> list[str]:
    """The labels most similar to ``label``: same ISO code first, then by spelling."""
    available = list(available)
    iso = label.split("_")[0].lower()
    same = [a for a in available if a.split("_")[0].lower() == iso]
    near = difflib.get_close_matches(label, available, n=n, cutoff=0.4)
    return list(dict.fromkeys(same + near))[:n]


@functools.cache
def _udhr_index() -> dict:
    path = udhr_index_path()
    return read_json(path, fix=UDHR_REFETCH) if path.is_file() else {}


def _udhr_aliases() -> dict[str, str]:
    return _udhr_index().get("aliases", {})


def _udhr_names() -> dict[str, str]:
    return _udhr_index().get("names", {})


def clear_alias_cache() -> None:
    """Forget the UDHR aliases read so far (after ``fetch_udhr`` or a change of ``$LANGNEURONS_CACHE``)."""
    _udhr_index.cache_clear()
