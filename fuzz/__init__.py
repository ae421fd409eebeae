"""Soak-mode fuzzing of gexe's hostile-input surfaces (issue #9).

Each target (`fuzz/*_target.py`) builds cases from a `Source` and checks a property;
`fuzz/run.py` runs them with atheris (coverage-guided libFuzzer) when installed, else
with Hypothesis, and prints JSON. tests/fuzz/ runs every target briefly in CI. See
RELIABILITY.md for the properties, the figures and the crashes found.
"""
