"""`python -m training.evaluate CHECKPOINT... --data SPEC --out DIR [--record]`: the evaluation report.

class_conditional.py and stargan.py compute a checkpoint's figures, figures.py draws its PNGs,
report.py writes report.md, checks.py holds the issue's thresholds, cli.py ties them together.
"""
