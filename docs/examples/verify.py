#!/usr/bin/env python3
"""An outside verifier of the creditledger, written from docs/FORMAT.md alone: Python's standard
library (json, hashlib, base64) plus Ed25519 from the `cryptography` package. It shares no code
with the ledger; the repository's tests run it against testdata/ when Python is there.

  verify.py vectors TESTDATA_DIR          check the test vectors (and RFC 8785's number examples)
  verify.py log EVENTS CHECKPOINT VKEY    EVENTS from `creditledger audit replay > EVENTS` (the whole
                                          stream, one stored message per line): every hash, every
                                          chain, and the log tree root the checkpoint signs
  verify.py proof PROOF VKEY              a proof from `audit proof` or GET /v1/audit/proof
"""
import base64
import hashlib
import json
import math
import sys

ZERO_HASH = "0" * 64


# --- RFC 8785 (JSON Canonicalization Scheme) --------------------------------------------------

def es6_number(x):
    """ECMAScript's Number.prototype.toString, as RFC 8785 section 3.2.2.3 requires."""
    if isinstance(x, bool) or math.isnan(x) or math.isinf(x):
        raise ValueError("not a JSON number: %r" % x)
    if x == 0:
        return "0"
    sign, s = ("-" if x < 0 else ""), repr(abs(float(x)))  # repr: the shortest round-trip digits
    mant, _, exp = s.partition("e")
    exp = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    if ip.strip("0"):
        n = len(ip.lstrip("0")) + exp
    else:
        n = exp - (len(fp) - len(fp.lstrip("0")))
    digits = (ip + fp).lstrip("0").rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    es = ("+" if e >= 0 else "-") + str(abs(e))
    return sign + digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + es


def jcs(v):
    """RFC 8785 canonical JSON text of a parsed value."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return es6_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # minimal escaping, lowercase \u00xx: as RFC 8785
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    keys = sorted(v, key=lambda k: k.encode("utf-16-be"))  # by UTF-16 code units
    return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(v[k]) for k in keys) + "}"


def no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate member %r" % k)
        d[k] = v
    return d


# --- Events -----------------------------------------------------------------------------------

def event_hash(stored):
    """The hash of a stored message under the rule its envelope names (FORMAT.md, "Hashes")."""
    ev = json.loads(stored, object_pairs_hook=no_duplicates)
    rule = ev.get("hash_rule")
    if rule == "rfc8785-sha256":
        hashed = jcs({k: v for k, v in ev.items() if k != "hash"}).encode()
    elif rule is None:  # legacy: the stored bytes without their final ,"hash":"<64 hex>" member
        suffix = b',"hash":"' + ev["hash"].encode() + b'"}'
        if not stored.endswith(suffix):
            raise ValueError("a legacy event must end with its hash member")
        hashed = stored[: -len(suffix)] + b"}"
    else:
        raise ValueError("unknown hash_rule %r" % rule)
    return ev, hashlib.sha256(hashed).hexdigest()


def check_events(messages):
    """Every hash, and each account's chain: versions 1, 2, 3 ... linked from the zero hash."""
    heads = {}
    for pos, stored in enumerate(messages, 1):
        ev, h = event_hash(stored)
        where = "position %d, account %s, version %d" % (pos, ev["account_id"], ev["version"])
        if h != ev["hash"]:
            raise SystemExit("FAILED at %s: hash %s, recomputed %s" % (where, ev["hash"], h))
        version, prev = heads.get(ev["account_id"], (0, ZERO_HASH))
        if ev["version"] != version + 1 or ev["prev_hash"] != prev:
            raise SystemExit("FAILED at %s: the chain expects version %d after %s" % (where, version + 1, prev))
        heads[ev["account_id"]] = (ev["version"], ev["hash"])
    return heads


# --- RFC 6962 / RFC 9162 Merkle tree ----------------------------------------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves):
    """MTH over leaf hashes (RFC 6962 section 2.1)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)  # the largest power of two below n
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def verify_inclusion(index, size, leaf, path, want_root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == want_root


def verify_consistency(size1, size2, path, root1, root2):
    """RFC 9162 section 2.1.4.2."""
    if size1 == size2:
        return not path and root1 == root2
    if size1 == 0:  # every tree extends the empty one, whose root is H("") (FORMAT.md, section 4)
        return not path and root1 == hashlib.sha256(b"").digest()
    if size1 > size2 or not path:
        return False
    if size1 & (size1 - 1) == 0:  # a power of two: the old root is the first node
        path = [root1] + path
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root1 and sr == root2


# --- C2SP signed notes and tlog checkpoints ---------------------------------------------------

def parse_vkey(vkey):
    name, key_hash, key = vkey.strip().split("+", 2)  # the base64 part may hold "+" too
    raw = base64.b64decode(key)
    if raw[0] != 1 or len(raw) != 33:
        raise ValueError("not an Ed25519 verifier key")
    return name, bytes.fromhex(key_hash), raw[1:]


def open_checkpoint(note, vkey):
    """Verify the note's signature by vkey; return (origin, size, root)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    name, key_hash, pub = parse_vkey(vkey)
    if hashlib.sha256(name.encode() + b"\n\x01" + pub).digest()[:4] != key_hash:
        raise SystemExit("FAILED: the verifier key's hash does not match its key")
    text, _, sigs = note.partition("\n\n")
    text += "\n"
    for line in sigs.splitlines():
        dash, signer, sig = line.split(" ")
        raw = base64.b64decode(sig)
        if dash == "\u2014" and signer == name and raw[:4] == key_hash:
            Ed25519PublicKey.from_public_bytes(pub).verify(raw[4:], text.encode())  # raises if bad
            origin, size, root_b64 = text.splitlines()[:3]
            if origin != name:
                raise SystemExit("FAILED: signed under %s, origin %s" % (name, origin))
            return origin, int(size), base64.b64decode(root_b64)
    raise SystemExit("FAILED: no signature by %s" % vkey.strip())


# --- Commands ---------------------------------------------------------------------------------

def cmd_vectors(d):
    rfc = json.load(open(d.rstrip("/") + "/../events/testdata/rfc8785.json"))
    for obj in rfc["objects"]:
        assert jcs(json.loads(obj["input"])) == obj["canonical"], obj["name"]
    for ieee, want in rfc["numbers"]:
        import struct
        x = struct.unpack(">d", bytes.fromhex(ieee))[0]
        assert es6_number(x) == want, (ieee, es6_number(x), want)
    envs = json.load(open(d + "/envelopes.json"))
    stored = [e["stored"].encode() for e in envs]
    for e in envs:
        _, h = event_hash(e["stored"].encode())
        assert h == e["hash"], e["position"]
    check_events(stored)
    tree = json.load(open(d + "/tree.json"))
    leaves = [leaf_hash(s) for s in stored]
    assert [x.hex() for x in leaves] == tree["leaf_hashes"]
    assert [root(leaves[:n]).hex() for n in range(1, len(leaves) + 1)] == tree["roots"]
    inc = tree["inclusion"]
    assert verify_inclusion(inc["leaf_index"], inc["tree_size"], leaves[inc["leaf_index"]],
                            [bytes.fromhex(p) for p in inc["path"]], root(leaves[: inc["tree_size"]]))
    con = tree["consistency"]
    assert verify_consistency(con["size1"], con["size2"], [bytes.fromhex(p) for p in con["path"]],
                              root(leaves[: con["size1"]]), root(leaves[: con["size2"]]))
    empty, r7 = hashlib.sha256(b"").digest(), root(leaves)
    assert verify_consistency(0, len(leaves), [], empty, r7) and not verify_consistency(0, len(leaves), [], leaves[0], r7)
    assert verify_consistency(len(leaves), len(leaves), [], r7, r7) and verify_inclusion(0, 1, leaves[0], [], leaves[0])
    origin, size, r = open_checkpoint(open(d + "/checkpoint.txt").read(), open(d + "/checkpoint.vkey").read())
    assert size == len(leaves) and r == root(leaves), "the checkpoint signs the tree"
    print("OK: %d envelopes, %d roots, an inclusion and a consistency proof, checkpoint of %s" % (len(envs), len(leaves), origin))


def cmd_log(events_file, checkpoint_file, vkey_file):
    messages = [line.rstrip(b"\n") for line in open(events_file, "rb")]
    origin, size, signed_root = open_checkpoint(open(checkpoint_file).read(), open(vkey_file).read())
    if size > len(messages):
        raise SystemExit("FAILED: the checkpoint covers %d messages, the file has %d" % (size, len(messages)))
    heads = check_events(messages)
    if root([leaf_hash(m) for m in messages[:size]]) != signed_root:
        raise SystemExit("FAILED: the events up to position %d do not give the root %s signed" % (size, signed_root.hex()))
    print("OK: %d events, %d accounts; positions 1 to %d are what %s signed" % (len(messages), len(heads), size, origin))


def cmd_proof(proof_file, vkey_file):
    p = json.load(open(proof_file))
    origin, size, signed_root = open_checkpoint(p["checkpoint"], open(vkey_file).read())
    event = base64.b64decode(p["event_base64"])
    ok = size == p["tree_size"] and p["leaf_index"] == p["position"] - 1 and verify_inclusion(
        p["leaf_index"], size, leaf_hash(event), [bytes.fromhex(h) for h in p["inclusion_path"]], signed_root)
    if not ok:
        raise SystemExit("FAILED: the proof does not lead to the signed root")
    _, h = event_hash(event)
    print("OK: the event at position %d (hash %s) is in %s's checkpoint of size %d" % (p["position"], h, origin, size))


if __name__ == "__main__":
    cmds = {"vectors": cmd_vectors, "log": cmd_log, "proof": cmd_proof}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        raise SystemExit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
