"""How every generated table writes a number, in each language of the handbook.

One rule per language, used by bench.py, sweep.py, measure.py and measure_memory.py:
the decimal separator is a point in English and Chinese and a comma in Vietnamese, and no
language groups thousands. "1.305" is 1305 to a Vietnamese reader and 1.305 to an English
one, so leaving the groups unmarked is the one way nobody misreads a table.
"""

DECIMAL_SEPARATOR = {"en": ".", "vi": ",", "zh": "."}


def number(value: float, lang: str, decimals: int = 0) -> str:
    """`value` rounded to `decimals` places, written the way `lang` writes numbers."""
    return f"{value:.{decimals}f}".replace(".", DECIMAL_SEPARATOR[lang])


if __name__ == "__main__":
    for lang in DECIMAL_SEPARATOR:
        print(lang, number(5003.2, lang), number(0.57, lang, 2))
