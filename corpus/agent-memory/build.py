#!/usr/bin/env python3
"""Builds the agent-memory evaluation set (facts.jsonl, dialog.jsonl, questions.jsonl) from the
hand-written sources beside it (facts.txt, dialog.txt, questions.txt). Deterministic: the same
sources give byte-identical files.

Links: a fact links to the facts of the same person and topic just before and just after it in
date order (the first and the last of a topic link to their two nearest), as an assistant links a
follow-up to what it follows. A dialog turn links to the previous and the next turn of its session.
Splits: the questions of each shape and kind are shuffled with random.Random(SEED) and dealt
alternately to dev and heldout.

    python3 corpus/agent-memory/build.py
"""

import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20260314


def lines(name):
    for line in open(os.path.join(HERE, name), encoding="utf-8"):
        line = line.rstrip("\n")
        if line.strip() and not line.startswith("# "):
            yield line


def build_facts():
    notes, person, name = [], None, None
    for line in lines("facts.txt"):
        if line.startswith("@"):
            person, name = line[1:].split("|")
            continue
        number, date, topic, text = line.split("|", 3)
        notes.append({"id": "%s-%s" % (person, number), "content": text, "links": [], "tags": [person, topic],
                      "metadata": {"person": name, "date": date, "topic": topic}})
    groups = {}
    for note in notes:
        groups.setdefault(tuple(note["tags"]), []).append(note)
    for group in groups.values():
        group.sort(key=lambda n: (n["metadata"]["date"], n["id"]))
        if len(group) < 3:
            raise SystemExit("topic %s has fewer than 3 notes" % (group[0]["tags"],))
        for i, note in enumerate(group):
            near = [i - 1, i + 1] if 0 < i < len(group) - 1 else ([1, 2] if i == 0 else [i - 2, i - 1])
            note["links"] = [group[j]["id"] for j in near]
    return sorted(notes, key=lambda n: n["id"])


def build_dialog():
    turns, session = [], []
    slug = speakers = None
    def close():
        for i, turn in enumerate(session):
            turn["links"] = [session[j]["id"] for j in (i - 1, i + 1) if 0 <= j < len(session)]
        turns.extend(session)
    for line in lines("dialog.txt"):
        if line.startswith("@"):
            close(); session = []
            slug, names = line[1:].split("|")
            speakers = names.split(",")
        elif line.startswith("#"):
            close(); session = []
            number, date = line[1:].split("|")
        else:
            speaker = line.split(":", 1)[0]
            assert speaker in speakers, line
            session.append({"id": "%s-%s-%02d" % (slug, number, len(session) + 1), "content": line, "links": [],
                            "tags": [slug, "session-%s" % number, speaker.lower()],
                            "metadata": {"conversation": slug, "session": int(number), "date": date, "speakers": speakers,
                                         "speaker": speaker}})
    close()
    return turns


def build_questions():
    questions = []
    for line in lines("questions.txt"):
        shape, kind, answers, text = line.split("|", 3)
        all_needed = "+" in answers
        ids = [a for a in answers.replace("+", ",").split(",") if a]
        questions.append({"id": None, "shape": shape, "kind": kind, "question": text, "answers": ids,
                          "all_needed": all_needed, "split": None})
    counters = {}
    for q in questions:
        counters[q["shape"]] = counters.get(q["shape"], 0) + 1
        q["id"] = "%sq-%03d" % (q["shape"][0], counters[q["shape"]])
    rng = random.Random(SEED)
    for shape in ("facts", "dialog"):
        for kind in ("single", "multi-hop", "temporal", "unanswerable"):
            group = [q for q in questions if q["shape"] == shape and q["kind"] == kind]
            rng.shuffle(group)
            for i, q in enumerate(group):
                q["split"] = "dev" if i % 2 == 0 else "heldout"
    return questions


def write(name, rows):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    facts, dialog, questions = build_facts(), build_dialog(), build_questions()
    write("facts.jsonl", facts)
    write("dialog.jsonl", dialog)
    write("questions.jsonl", questions)
    print("%d facts, %d dialog turns, %d questions" % (len(facts), len(dialog), len(questions)))


if __name__ == "__main__":
    main()
