#!/usr/bin/env python3
"""Measures the storage layouts Tidings chose between, on the benchmark corpus.

Compares LZ4 on raw JSON (per event, blocks of 4-256 KiB, HC), and on records rewritten by
Tidings' data transform (binary UUIDs, packed hex runs, field-name tokens, interned users),
with and without a 64 KiB dictionary of the store's first records. Prints bytes per event and
the ratio to the raw JSON, and compression speed. docs/STORAGE.md quotes its output.

    tools/measure-layouts.py [--events 200000]

Needs the release build of tidings (for the corpus) and the lz4 module from PyPI (installed
with pip when missing).
"""
import argparse, json, os, re, subprocess, sys, time

try:
    import lz4.block
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "lz4"], check=True)
    import lz4.block

parser = argparse.ArgumentParser()
parser.add_argument("--events", type=int, default=200_000)
parser.add_argument("--tidings", default=".build/release/tidings")
args = parser.parse_args()

bench = os.path.join(os.path.dirname(args.tidings), "tidings-bench")
corpus = subprocess.run([bench, "corpus", "--events", str(args.events)],
                        check=True, capture_output=True).stdout.splitlines()
raw = sum(len(line) for line in corpus)
count = len(corpus)

UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX = re.compile(rb"[0-9a-f]{8,255}")
KEYS = [b'"notification_id":', b'"kind":', b'"title":', b'"body":', b'"link":', b'"actor_id":',
        b'"metadata":', b'"up_to_seq":', b'"project_id":', b'"priority":']

def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)

def transform(data, own):
    """Mirror of DataTransform.encode, close enough for sizing."""
    if own is not None:
        data = data.replace(b'"notification_id":"' + own + b'"', b"\x03")
    data = UUID.sub(lambda m: b"\x01" + bytes.fromhex(m.group(0).replace(b"-", b"").decode()), data)
    def pack(m):
        text = m.group(0)
        padded = text + (b"0" if len(text) % 2 else b"")
        return b"\x02" + bytes([len(text)]) + bytes.fromhex(padded.decode())
    data = HEX.sub(pack, data)
    for index, key in enumerate(KEYS):
        data = data.replace(key, bytes([0x10 + index]))
    return data

users, streams, records = {}, {}, []
for line in corpus:
    event = json.loads(line)
    user = users.setdefault(event["user_id"], len(users) + 1)
    streams[user] = streams.get(user, 0) + 1
    data = line[line.index(b'"data":') + 7:-1]
    own = event["data"].get("notification_id", "").encode()
    packed_id = b"\x00" + bytes.fromhex(own.decode().replace("-", "")) if UUID.fullmatch(own) else varint(len(own)) + own
    kind = {"notification.created": 0, "notification.read": 1}.get(event["type"], 2)
    header = bytes([kind]) + varint(user) + varint(streams[user]) + varint(1) + packed_id
    body = transform(data, own)
    records.append(header + varint(len(body)) + body)

def blocks(items, size):
    current, length = [], 0
    for item in items:
        current.append(item)
        length += len(item)
        if length >= size:
            yield b"".join(current)
            current, length = [], 0
    if current:
        yield b"".join(current)

def measure(name, items, size, hc=None, dictionary=None):
    started = time.time()
    total = 0
    for block in blocks(items, size):
        options = {"store_size": False}
        if hc:
            options.update(mode="high_compression", compression=hc)
        if dictionary:
            options["dict"] = dictionary
        total += len(lz4.block.compress(block, **options))
    seconds = time.time() - started
    print(f"{name:52s} {total / count:7.1f} B/event  ratio {raw / total:5.2f}  {raw / seconds / 1e6:7.0f} MB/s")

print(f"{count} events, {raw / count:.1f} bytes of compact JSON each")
measure("raw JSON, each event alone", corpus, 1)
for size in (4096, 65536, 262144):
    measure(f"raw JSON, blocks of {size // 1024} KiB", corpus, size)
measure("raw JSON, blocks of 256 KiB, LZ4 HC 9", corpus, 262144, hc=9)
dictionary = b"".join(records)[:65536]
measure("records, each event alone, with dictionary", records, 1, dictionary=dictionary)
for size in (4096, 65536):
    measure(f"records, blocks of {size // 1024} KiB, no dictionary", records, size)
for size in (1024, 2048, 4096, 8192, 16384):
    measure(f"records, blocks of {size // 1024 if size >= 1024 else size} KiB, with dictionary", records, size,
            dictionary=dictionary)
measure("records, blocks of 4 KiB, with dictionary, LZ4 HC 9", records, 4096, hc=9, dictionary=dictionary)
