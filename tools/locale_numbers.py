"""How every generated table writes a number, in each language of the handbook.

One rule per language, used by every measuring module of tools/ (``_bench``, ``_concurrency``,
``_memory``, ``_sweep``):
the decimal separator is a point in English and Chinese and a comma in Vietnamese, and no
language groups thousands. "1.305" is 1305 to a Vietnamese reader and 1.305 to an English
one, so leaving the groups unmarked is the one way nobody misreads a table.
"""

DECIMAL_SEPARATOR = {"en": ".", "vi": ",", "zh": "."}


def number(value: float, lang: str, decimals: int = 0) -> str:
    """`value` rounded to `decimals` places, written the way `lang` writes numbers."""
    return f"{value:.{decimals}f}".replace(".", DECIMAL_SEPARATOR[lang])


#: The CPU steal sentence of every generated table: the share of CPU time the hypervisor gave
#: to other guests during the run (files measured before it was recorded say so).
STEAL = {
    "en": ("CPU steal during the run: {steal} %.", "CPU steal: not recorded."),
    "vi": ("CPU steal trong lúc đo: {steal} %.", "CPU steal: không được ghi lại."),
    "zh": ("测量期间的 CPU steal：{steal}%。", "CPU steal：未记录。"),
}


def steal(data: dict, lang: str) -> str:
    """The steal sentence for a measured data file, in `lang`, to append to the sentence
    before it (a space first, except in Chinese, which puts no space between sentences)."""
    recorded, missing = STEAL[lang]
    space = "" if lang == "zh" else " "
    if data.get("steal_percent") is None:
        return space + missing
    return space + recorded.format(steal=number(data["steal_percent"], lang, 1))


if __name__ == "__main__":
    for lang in DECIMAL_SEPARATOR:
        print(lang, number(5003.2, lang), number(0.57, lang, 2), steal({}, lang))
