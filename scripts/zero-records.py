#!/usr/bin/env python3
"""Zero every record of the given fragments in a carmad primary log, in place, as a bad sector
would: a running carmad reads them as checksum mismatches, and a dream cycle restores them from
the redundancy log. For tests and demonstrations on a running store; on a stopped one,
`carmad faults zero ID...` does the same.

Usage: zero-records.py DATA_DIR ID [ID ...]   (prints how many records it zeroed)

Records in DATA_DIR/segments/*.seg start with a 40-byte header: "CRML", the id's length as a
little-endian u16 at offset 8, the body's as a u32 at 12, then the id from offset 40.
"""
import pathlib
import sys


def records(data_dir):
    """(segment path, offset, length, id) of every record with a readable header."""
    for path in sorted((pathlib.Path(data_dir) / "segments").glob("*.seg")):
        data = path.read_bytes()
        offset = data.find(b"CRML")
        while 0 <= offset and offset + 40 <= len(data):
            id_length = int.from_bytes(data[offset + 8 : offset + 10], "little")
            body_length = int.from_bytes(data[offset + 12 : offset + 16], "little")
            end = offset + 40 + id_length + body_length
            if 0 < id_length <= 200 and end <= len(data):
                yield path, offset, end - offset, data[offset + 40 : offset + 40 + id_length].decode("utf-8", "replace")
                offset = data.find(b"CRML", end)
            else:
                offset = data.find(b"CRML", offset + 1)


def zero(data_dir, ids):
    """Zeroes the records of `ids`; returns how many."""
    count = 0
    for path, offset, length, fragment_id in list(records(data_dir)):
        if fragment_id in ids:
            with open(path, "r+b") as handle:
                handle.seek(offset)
                handle.write(bytes(length))
            count += 1
    return count


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(zero(sys.argv[1], set(sys.argv[2:])))
