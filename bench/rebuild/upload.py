"""What a rebuild uploads: builds a catalogue of local images (openclipart's drawings by default)
with build-index, then rebuilds it after 1% of the rows left and 1% got a new picture and vector
(scattered, seeded), and prints the bytes of the files the rebuild added (a host or cache must fetch them
again), by folder. Embeddings are synthetic and clustered (16 wide, as the tiny test model), given
through --embeddings, so no image tower runs and every picture has its own vector.
Usage: python upload.py BUILD_INDEX WORK_DIR [DATASET_DIR]
  e.g. python bench/rebuild/upload.py target/debug/build-index /tmp/upload ../shared/datasets/openclipart
"""
import array
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys

build_index, work = sys.argv[1], os.path.abspath(sys.argv[2])
dataset = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else '../shared/datasets/openclipart')
model = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../tests/fixtures/tiny-clip')
DIM = 16
os.makedirs(work, exist_ok=True)
if not os.path.exists(f'{work}/images'):
    os.symlink(f'{dataset}/images', f'{work}/images')
rows = [json.loads(line) for line in open(f'{dataset}/catalogue.jsonl')]

rng = random.Random(3)
centres = [[rng.gauss(0, 1) for _ in range(DIM)] for _ in range(50)]


def near():
    """A point near one of the centres."""
    c = centres[rng.randrange(len(centres))]
    return [x + 0.35 * rng.gauss(0, 1) for x in c]


def picture(r):
    """The hash of a row's picture: rows showing the same picture get the same vector, as from
    an image tower (build-index caches vectors by picture)."""
    with open(f"{dataset}/{r['image']}", 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


embedding = {}
for r in rows:
    embedding.setdefault(picture(r), near())


def build(name, rs):
    """Writes catalogue `name` of rows `rs` with their embeddings and builds it into work/site."""
    with open(f'{work}/{name}.jsonl', 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rs)
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rs), DIM)
    header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
    with open(f'{work}/{name}.npy', 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + len(header).to_bytes(2, 'little') + header.encode())
        f.write(array.array('f', [x for r in rs for x in embedding[picture(r)]]).tobytes())
    with open(f'{work}/{name}.meta.jsonl', 'w') as f:
        f.writelines(json.dumps({'id': r['id']}) + '\n' for r in rs)
    run = subprocess.run(
        [build_index, 'build', '--catalogue', f'{work}/{name}.jsonl', '--model', model,
         '--embeddings', f'{work}/{name}.npy', '--embeddings-metadata', f'{work}/{name}.meta.jsonl',
         '--out', f'{work}/site', '--cache', f'{work}/cache', '--allow-outside-paths',
         # The tiny model's text encoder ranks poorly; the files are what is measured.
         '--min-recall', '0.3'],
        capture_output=True, text=True)
    if run.returncode not in (0, 3):
        sys.exit(run.stderr)
    return run.stderr


def files():
    """Each file of the site with its size."""
    out = {}
    for d, _, names in os.walk(f'{work}/site'):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, f'{work}/site')] = os.path.getsize(p)
    return out


shutil.rmtree(f'{work}/site', ignore_errors=True)
shutil.rmtree(f'{work}/cache', ignore_errors=True)
n = len(rows)
# 1% of the rows are held back from the first build: their pictures are the changed rows' new
# ones (so no picture, nor its cached vector, was seen before).
held = set(rng.sample(range(n), n // 100))
build('before', [r for i, r in enumerate(rows) if i not in held])
before = files()
gone = set(rng.sample([i for i in range(n) if i not in held], n // 100))
changed = rng.sample([i for i in range(n) if i not in held | gone], n // 100)
after = [dict(r) for r in rows]
for i, h in zip(changed, sorted(held)):
    after[i]['image'] = rows[h]['image']
    embedding[picture(rows[h])] = near()
log = build('after', [r for i, r in enumerate(after) if i not in held | gone])
print('\n'.join(line for line in log.splitlines() if line.startswith(('vectors:', 'thumbnails:'))))
totals = {}
for path, size in files().items():
    t = totals.setdefault(path.split('/')[0] if '/' in path else '(top)', [0, 0, 0, 0])
    t[0] += 1
    t[1] += size
    if path not in before:
        t[2] += 1
        t[3] += size
for folder, (nf, nb, af, ab) in sorted(totals.items()):
    print(f'{folder:9} {nf:5} files, {nb / 1e6:6.2f} MB; new {af:4} files, {ab / 1e6:6.2f} MB '
          f'({100 * ab / max(nb, 1):.1f}%)')
new, total = sum(t[3] for t in totals.values()), sum(t[1] for t in totals.values())
print(f'upload {new / 1e6:.2f} of {total / 1e6:.2f} MB ({100 * new / total:.1f}%)')
