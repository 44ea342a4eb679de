#!/usr/bin/env python3
"""Agent-memory notes for the namespace benchmark, and the loader that writes them.

    namespaces-notes.py write URL NAMESPACES PER_NAMESPACE [--only NS] [--token TOKEN]
        writes PER_NAMESPACE short notes (60-200 bytes: facts about people and tasks, linked to the
        note before) into each of NAMESPACES namespaces u00000, u00001, … with batch writes
        (POST /namespaces/{ns}/fragments, one request per namespace, 8 at a time); --only writes
        one namespace's notes (the same ones), for the store that holds only it; --flat writes every
        note into the namespace default instead (ids `u00042.m7`), for the store without namespaces.
    namespaces-notes.py corpus NS PER_NAMESPACE OUT
        writes NS's notes as JSONL ({"content": …}), the query corpus for `carma load query`.

The notes of a namespace depend only on its name (seeded), so both stores hold the same text.
"""

import json
import random
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

PEOPLE = ["Ada", "Bram", "Chen", "Dalia", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lea", "Mateo", "Noor", "Oskar", "Priya"]
DRINKS = ["green tea", "black coffee", "oat latte", "sparkling water", "rooibos", "espresso"]
CITIES = ["Porto", "Lyon", "Tallinn", "Osaka", "Valparaiso", "Ghent", "Bergen", "Trieste"]
RELATIONS = ["sister", "brother", "manager", "dentist", "landlord", "cousin", "neighbour"]
TASKS = ["renew the passport", "book the dentist", "send the invoice", "fix the bike brakes", "call the plumber",
         "file the tax return", "order printer ink", "water the plants", "back up the laptop"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "next week", "the 14th", "end of month"]
HOBBIES = ["bouldering", "sourdough baking", "chess", "birdwatching", "salsa", "woodworking", "running"]


def notes(namespace: str, count: int):
    rng = random.Random(namespace)
    templates = [
        lambda: f"{rng.choice(PEOPLE)} prefers {rng.choice(DRINKS)} in the morning and avoids sugar.",
        lambda: f"{rng.choice(PEOPLE)}'s {rng.choice(RELATIONS)} lives in {rng.choice(CITIES)} and visits in spring.",
        lambda: f"Task: {rng.choice(TASKS)} by {rng.choice(DAYS)}; {rng.choice(PEOPLE)} asked twice already.",
        lambda: f"{rng.choice(PEOPLE)} took up {rng.choice(HOBBIES)} last year and practises on {rng.choice(DAYS)}s.",
        lambda: f"Remember that {rng.choice(PEOPLE)} is allergic to peanuts; the team lunch is on {rng.choice(DAYS)}.",
        lambda: f"{rng.choice(PEOPLE)} moved to {rng.choice(CITIES)} for a job in logistics and misses the old flat.",
    ]
    out = []
    for index in range(count):
        text = rng.choice(templates)()
        note = {"id": f"m{index}", "content": text, "tags": ["memory"]}
        if index:
            note["links"] = [f"m{index - 1}"]
        out.append(note)
    return out


def post(url: str, namespace: str, items, token: str = "", flat: bool = False) -> None:
    if flat:
        # Everything in the namespace default, the namespace's name in the ids instead.
        items = [{**item, "id": f"{namespace}.{item['id']}", **({"links": [f"{namespace}.{link}" for link in item["links"]]} if "links" in item else {})}
                 for item in items]
    body = json.dumps({"fragments": items}).encode()
    path = "/fragments" if flat else f"/namespaces/{namespace}/fragments"
    request = urllib.request.Request(f"{url}{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.load(response)
    if answer["failed"]:
        raise SystemExit(f"{namespace}: {answer['failed']} items failed: {answer['results'][:2]}")


def main() -> None:
    if sys.argv[1] == "corpus":
        namespace, count, out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        with open(out, "w") as f:
            for note in notes(namespace, count):
                f.write(json.dumps({"id": note["id"], "content": note["content"]}) + "\n")
        return
    url, spaces, per = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    token = sys.argv[sys.argv.index("--token") + 1] if "--token" in sys.argv else ""
    flat = "--flat" in sys.argv
    names = [only] if only else [f"u{index:05d}" for index in range(spaces)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        for done, _ in enumerate(pool.map(lambda name: post(url, name, notes(name, per), token, flat), names), 1):
            if done % 1000 == 0:
                print(f"  {done} namespaces written ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    print(f"wrote {len(names)} namespaces x {per} notes in {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
