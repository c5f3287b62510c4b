#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets into corpus/<target>/seed-*.

Inputs a fuzzer found (regressions, kept minimized) live next to them under other names and
are not touched. Run after changing a seed below; commit what changes.
"""

import base64
import hashlib
import hmac
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(v):
    """A small CBOR encoder: enough for the seeds (maps keep their order)."""
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, int):
        return cbor_head(0, v) if v >= 0 else cbor_head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return cbor_head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return cbor_head(3, len(b)) + b
    if isinstance(v, list):
        return cbor_head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        return cbor_head(5, len(v)) + b"".join(cbor(k) + cbor(x) for k, x in v.items())
    raise TypeError(v)


def decode_seeds():
    json_texts = [
        '{"type":"push","key":"cursor","value":{"x":1,"y":-2.5},"action":{"type":"relay"}}',
        '{"type":"push","key":"k","value":[1,"two",null,true],"action":{"type":"append"}}',
        '{"type":"push","key":"k","value":"v","action":{"type":"replace"}}',
        '{"type":"push","key":"k","value":0,"action":{"type":"compact","seq":3}}',
        '{"type":"get","key":"k","seq":5}',
        '{"type":"get","key":"k","seq":null}',
        '{"type":"get","key":"k"}',
        '{"type":"ping","nonce":42}',
        '{"type":"ping"}',
        ' { "type" : "ping" , "nonce" : 1.0e0 } ',
        '{"type":"push","key":"a\\u00e9\\n","value":"\\ud83d\\ude00","action":{"type":"relay"}}',
        '{"type":"get","type":"push","key":"a","value":1,"action":{"type":"relay"}}',
        '{"type":"push","key":"k","value":1e400,"action":{"type":"relay"}}',
        '{"type":"push","key":"k","value":[[[[[[[[1]]]]]]]],"action":{"type":"relay"}}',
        '{"type":"unknown"}',
        '[1,2,3]',
        '{"type":"get","key":"k","seq":9007199254740993}',
    ]
    seeds = {f"json-{i:02}": t.encode() for i, t in enumerate(json_texts)}
    cbor_values = [
        {"type": "push", "key": "k", "value": b"\x00\x01\xff", "action": {"type": "relay"}},
        {"type": "push", "key": "k", "value": {"a": [1, -1, 2.5]}, "action": {"type": "append"}},
        {"type": "get", "key": "k", "seq": 0},
        {"type": "ping", "nonce": 18446744073709551615},
        {"type": "push", "key": "k", "value": -0.0, "action": {"type": "compact", "seq": 1}},
    ]
    for i, v in enumerate(cbor_values):
        seeds[f"cbor-{i:02}"] = cbor(v)
    # Forms our encoder never writes: tag 64, indefinite lengths, half floats, undefined.
    seeds["cbor-tag64"] = (cbor_head(5, 1) + cbor("value") + b"\xd8\x40" + cbor(b"\x01\x02"))
    seeds["cbor-indefinite"] = b"\xbf" + cbor("type") + b"\x7f\x62pi\x62ng\xff" + b"\xff"
    seeds["cbor-half-undefined"] = b"\x82\xf9\x3c\x00\xf7"
    return seeds


def json_diff_seeds():
    texts = [
        "null", "true", "false", "0", "-0", "-0.0", "1.5e-3", "18446744073709551616",
        "-9223372036854775809", "1e309", "1e-400", "0." + "0" * 330 + "1",
        "1" + "0" * 309 + "e-0", "4.9e-324", '"\\u0000\\ud83d\\ude00\\/"', '"\xc3\xa9\xf0\x9f\x98\x80"',
        '"\xed\xa0\x80"', '{"a":1,"a":2}', '{"b":[],"a":{}}', " [1 , 2 ]\r\n", "[" * 16 + "]" * 16,
        "[" * 17 + "]" * 17, "\xef\xbb\xbf{}", "01", "1.", ".5", "[1,]", '{"a" 1}', "tru",
    ]
    return {f"{i:02}": t.encode("latin-1") if isinstance(t, str) else t
            for i, t in enumerate(texts)}


MASK = b"\x37\xfa\x21\x3d"


def frame(first, payload, masked=True, length_form=None):
    n = len(payload)
    form = length_form or (7 if n < 126 else 16 if n <= 0xFFFF else 64)
    bit = 0x80 if masked else 0
    if form == 7:
        head = bytes([first, bit | n])
    elif form == 16:
        head = bytes([first, bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, bit | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    return head + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def ws_frame_seeds():
    # One byte picks the limit (index 6: 1 MiB, 2: 125 bytes), four seed the split.
    big, small = b"\x06\x12\x34\x56\x78", b"\x02\x9a\xbc\xde\xf1"
    close = lambda code, reason=b"": frame(0x88, struct.pack(">H", code) + reason)
    streams = {
        "text": frame(0x81, b'{"type":"ping"}'),
        "binary": frame(0x82, bytes(range(256))),
        "fragmented": frame(0x01, b"hel") + frame(0x00, b"") + frame(0x89, b"p") +
                      frame(0x80, b"lo \xc3\xa9"),
        "controls": frame(0x89, b"ping") + frame(0x8a, b"") + close(1000, b"bye"),
        "close-empty": frame(0x88, b""),
        "long16": frame(0x82, b"x" * 300),
        "long64": frame(0x82, b"y" * 20, length_form=64),
        "unmasked": frame(0x81, b"hi", masked=False),
        "bad-utf8": frame(0x81, b"\xc3\x28"),
        "split-utf8": frame(0x01, b"\xe6\xb0") + frame(0x80, b"\xb4"),
        "bad-close": frame(0x88, b"\x03"),
        "close-code-1005": close(1005),
        "rsv": bytes([0xc1]) + frame(0x81, b"x")[1:],
        "continuation-first": frame(0x80, b"x"),
        "huge": bytes([0x82, 0xff]) + struct.pack(">Q", 1 << 40) + MASK,
        "top-bit-length": bytes([0x82, 0xff]) + struct.pack(">Q", 1 << 63) + MASK,
        "two-messages": frame(0x81, b"one") + frame(0x82, b"two"),
        "empty-text": frame(0x81, b""),
        "close-bad-reason": close(1000, b"\xff"),
        "close-bad-code": close(999),
        "close-reason-123": close(4999, b"r" * 123),
        "ping-126": bytes([0x89, 0xfe, 0x00, 0x7e]) + MASK + b"p" * 126,
        "fragmented-ping": frame(0x09, b"p"),
        "data-inside-fragments": frame(0x01, b"a") + frame(0x81, b"b"),
        "unknown-opcode": frame(0x83, b"x"),
    }
    seeds = {f"{name}": big + s for name, s in streams.items()}
    seeds["too-big-at-125"] = small + frame(0x81, b"z" * 126)
    seeds["fragments-over-125"] = small + frame(0x02, b"a" * 100) + frame(0x80, b"b" * 26)
    return seeds


def routes_seeds():
    targets = [
        "/new", "/healthz", "/stats", "/cluster", "/room/abc", "/room/abc/connect",
        "/room/abc/connect?cbor=true&debug=1&subscribe=all", "/room/abc/send?x=1",
        "/cluster/room/abc", "/room/../new", "/room/%2e%2e/send", "//new", "/room//connect",
        "/room/a/connect/", "?cbor", "/room/a/connect?cbor=maybe&debug&subscribe",
        "/room/a/connect?subscribe=all&cbor=1&cbor=0&&=&debug=false", "",
        "/readyz", "/metrics", "/admin", "/admin/admin.js", "/admin/api/cluster",
        "/admin/api/node", "/admin/api/room/abc", "/admin/api/room",
    ]
    return {f"{i:02}": t.encode() for i, t in enumerate(targets)}


FUZZ_SECRET = b"fuzz-cluster-secret"  # the secret room_id_fuzz.cpp checks ids under


def room_id(random16, secret=FUZZ_SECRET):
    tag = hmac.new(secret, random16, hashlib.sha256).digest()[:8]
    return base64.b32encode(random16 + tag).decode().rstrip("=").lower().encode()


def room_id_seeds():
    valid = room_id(bytes(range(16)))
    seeds = {
        "shape": b"a" * 39,
        "alphabet": b"abcdefghijklmnopqrstuvwxyz234567abcdefg",
        "padding-bit": b"a" * 38 + b"b",
        "upper": b"A" * 39,
        "short": b"abc",
        "empty": b"",
        "bytes": bytes(range(40)),
        "valid": valid,
        "valid-zeros": room_id(bytes(16)),
        "valid-ones": room_id(b"\xff" * 16),
        "other-secret": room_id(bytes(range(16)), b"another-secret"),
        "valid-upper": valid.upper(),
        "valid-last-changed": valid[:-1] + (b"b" if valid[-1:] != b"b" else b"c"),
        "valid-first-changed": (b"b" if valid[:1] != b"b" else b"c") + valid[1:],
        "valid-padded": valid + b"=",
        "valid-query": valid + b"?cbor=true",
        "valid-newline": valid + b"\n",
        "valid-short": valid[:-1],
        "digits-01": b"0" * 19 + b"1" * 20,
        "digits-89": b"8" * 19 + b"9" * 20,
        "utf8": "é".encode() * 19 + b"a",
    }
    return seeds


def write(target, seeds):
    out = os.path.join(HERE, "corpus", target)
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        if old.startswith("seed-"):
            os.remove(os.path.join(out, old))
    for name, data in seeds.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("decode_fuzz", decode_seeds())
    write("json_diff_fuzz", json_diff_seeds())
    write("ws_frame_fuzz", ws_frame_seeds())
    write("routes_fuzz", routes_seeds())
    write("room_id_fuzz", room_id_seeds())
