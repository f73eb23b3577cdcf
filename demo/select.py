"""Builds vitrine's demo catalogue from the image datasets vitrine's developers share.

Run from this folder with the datasets at ../../shared/datasets (read-only source):
    python3 select.py
It picks shop-like items (food, tools, clothes, toys, instruments, vehicles, furniture, plants,
animals…) from the public-domain Open Clip Art drawings, a few Noto emoji objects (Apache-2.0) and
the public-domain / CC0 / PDDL photographs, copies the images under images/ and writes
catalogue.jsonl. Deterministic: the same datasets give the same catalogue.
"""
import json, pathlib, shutil

SRC = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
OUT = pathlib.Path(__file__).resolve().parent

CLIPART = {  # category prefix -> how many
    "food/fruit": 14, "food/desserts": 12, "food/vegetables": 8, "food/beverages": 10,
    "food/breads_and_carbs": 8, "food/meats_and_eggs": 6, "tools": 16, "office": 14,
    "recreation/music": 14, "recreation/toys": 12, "recreation/sports": 12, "recreation/party": 6,
    "people/clothing": 18, "containers": 8, "electronics": 10, "buildings/furniture": 8,
    "plants/flowers": 12, "plants/trees": 4, "animals/mammals": 12, "animals/birds": 8,
    "animals/fish": 6, "animals/bugs": 6, "transportation/vehicles": 10, "transportation/boating": 6,
    "education/books": 6, "recreation/holiday": 8, "decorations": 8,
}
EMOJI = {"Food & Drink": 14, "Objects": 20, "Animals & Nature": 6}
PHOTO_LICENCES = ("CC0", "public domain", "PDDL")


def rows(name):
    return [json.loads(l) for l in open(SRC / name / "catalogue.jsonl", encoding="utf-8")]


def pick(items, key, quota):
    chosen, seen = [], set()
    for prefix, n in quota.items():
        taken = 0
        for r in items:
            if taken == n or not (key(r) == prefix or key(r).startswith(prefix + "/")):
                continue
            title = r["title"].strip().lower()
            if title in seen:
                continue
            seen.add(title)
            chosen.append(r)
            taken += 1
    return chosen


def main():
    images = OUT / "images"
    shutil.rmtree(images, ignore_errors=True)
    out = []
    for r in pick(rows("openclipart"), lambda r: r["category"], CLIPART):
        out.append(("openclipart", r))
    for r in pick(rows("emoji"), lambda r: r["category"], EMOJI):
        out.append(("emoji", r))
    for r in rows("photos"):
        if r["license"].startswith(PHOTO_LICENCES) and "nude" not in r["title"]:
            out.append(("photos", r))
    with open(OUT / "catalogue.jsonl", "w", encoding="utf-8") as f:
        for source, r in out:
            src = SRC / source / r["image"]
            dest = images / source / pathlib.Path(r["image"]).name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            row = {"id": r["id"], "title": r["title"]}
            for k in ("description", "keywords", "category", "subcategory", "license", "source"):
                if r.get(k):
                    row[k] = r[k]
            if source == "openclipart":
                row["license"] = "public domain (Open Clip Art Library)"
            if source == "emoji":
                row["license"] = "Apache-2.0 (Noto Emoji)"
            row["image"] = str(dest.relative_to(OUT))
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(len(out), "items")


if __name__ == "__main__":
    main()
