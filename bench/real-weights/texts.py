"""Writes the quant study's fixed split (1,000 title queries, 6,000 other texts) as JSON for
vitrine-clip's `real_weights` example, so both measure the same texts.
Usage: python texts.py STUDY_DIR OUT_JSON (STUDY_DIR holds quantstudy.py)."""
import json
import sys

sys.path.insert(0, sys.argv[1])
from quantstudy import load_texts  # noqa: E402

queries, corpus, _ = load_texts()
with open(sys.argv[2], 'w') as f:
    json.dump(dict(queries=queries, corpus=corpus), f)
print(f'{len(queries)} queries, {len(corpus)} texts -> {sys.argv[2]}')
