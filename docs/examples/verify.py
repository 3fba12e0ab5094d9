#!/usr/bin/env python3
"""An outside verifier of the creditledger, written from docs/FORMAT.md alone: Python's standard
library (json, hashlib, base64) plus Ed25519 from the `cryptography` package. It shares no code
with the ledger; the repository's tests run it against testdata/ when Python is there.

  verify.py vectors TESTDATA_DIR          check the test vectors (and RFC 8785's number examples)
  verify.py log EVENTS CHECKPOINT VKEY    EVENTS from `creditledger audit replay > EVENTS` (the whole
                                          stream, one stored message per line): every hash, every
                                          chain, every ownership record as far as its bytes tell,
                                          and the log tree root the checkpoint signs
  verify.py export EXPORT CHECKPOINT VKEY [PARTITIONS]
                                          EXPORT from `audit export --format jsonl` (the whole
                                          stream, with positions and subjects): the same, with each
                                          message checked against its subject, and each event's
                                          partition in its subject and each ownership record's
                                          count against the stream's partition count: PARTITIONS
                                          (its metadata creditledger_partitions) or, not given,
                                          the count the first ownership record names
  verify.py proof PROOF VKEY              a proof from `audit proof` or GET /v1/audit/proof
"""
import base64
import hashlib
import json
import math
import re
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
    """Every hash, and each account's chain, over stored messages in position order (no subjects)."""
    heads, _ = check_messages([(pos, None, m) for pos, m in enumerate(messages, 1)])
    return heads


def check_messages(items, partitions=None):
    """Every event's hash and each account's chain (versions 1, 2, 3 ... linked from the zero
    hash), and every partition ownership record, over (position, subject, stored bytes) in
    position order. With subject None (a replay) a record is known by its bytes alone; with
    subjects, each event is checked against its own (check_event_subject), all in the scheme of
    the first: a stream captures one. Without partitions, the first ownership record's count
    stands for the stream's from there on."""
    heads, fences, scheme = {}, 0, None
    for pos, subject, stored in items:
        if subject is None:
            try:
                obj = json.loads(stored)
            except ValueError:
                obj = None
            is_fence = isinstance(obj, dict) and "format" in obj
        else:
            is_fence = subject.startswith(FENCE_PREFIX)
        if is_fence:
            try:
                check_fence(stored, subject, partitions)
            except ValueError as e:
                raise SystemExit("FAILED at position %d: not a partition ownership record (foreign_fence): %s" % (pos, e))
            if partitions is None and subject is not None:
                # Not given: every ownership record names the stream's partition count, and the
                # later ones (and the events' partitions) are checked against the first.
                partitions = json.loads(stored)["partitions"]
            fences += 1
            continue
        ev, h = event_hash(stored)
        where = "position %d, account %s, version %d" % (pos, ev["account_id"], ev["version"])
        if subject is not None:
            try:
                scheme = check_event_subject(subject, ev["account_id"], partitions, scheme)
            except ValueError as e:
                raise SystemExit("FAILED at %s: stored under subject %s (wrong_subject): %s" % (where, subject, e))
        if h != ev["hash"]:
            raise SystemExit("FAILED at %s: hash %s, recomputed %s" % (where, ev["hash"], h))
        version, prev = heads.get(ev["account_id"], (0, ZERO_HASH))
        if ev["version"] != version + 1 or ev["prev_hash"] != prev:
            raise SystemExit("FAILED at %s: the chain expects version %d after %s" % (where, version + 1, prev))
        heads[ev["account_id"]] = (ev["version"], ev["hash"])
    return heads, fences


# --- Event subjects (FORMAT.md section 1) -----------------------------------------------------

EVENT_SUBJECT = re.compile(r"ledger\.events\.(?:(0|[1-9][0-9]*)\.)?([A-Za-z0-9_-]{1,64})")


def fnv1a32(data):
    """FNV-1a, 32 bits: offset basis 2166136261, prime 16777619, over the bytes."""
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def partition_of(account_id, partitions):
    """The account's partition among the stream's partition count."""
    return fnv1a32(account_id.encode()) % partitions


def check_event_subject(subject, account_id, partitions=None, scheme=None):
    """Raise ValueError unless subject is where a store files account_id's events: the account
    subject ledger.events.<account_id> (a store created before partitioned subjects) or
    ledger.events.<p>.<account_id> (p in decimal, no sign or leading zeros; the account's
    partition when the partition count is known). scheme, when known ("account" or "partition",
    the stream's metadata creditledger_event_subjects, or the export's first event), is the only
    one allowed. Returns the subject's scheme."""
    m = EVENT_SUBJECT.fullmatch(subject)
    if not m or m.group(2) != account_id:
        raise ValueError("not the subject of account %s's events" % account_id)
    got = "account" if m.group(1) is None else "partition"
    if scheme is not None and got != scheme:
        raise ValueError("a subject of the %s scheme where the stream uses the %s scheme" % (got, scheme))
    if got == "partition":
        p = int(m.group(1))
        if p >= 4096:
            raise ValueError("partition %d: a stream has at most 4096" % p)
        if partitions is not None and p != partition_of(account_id, partitions):
            raise ValueError("partition %d, where the account's is %d of %d" % (p, partition_of(account_id, partitions), partitions))
    return got


# --- Partition ownership records (FORMAT.md section 8) ----------------------------------------

FENCE_PREFIX = "ledger.fence."
FENCE_MEMBERS = {"format", "lease_revision", "owner", "partition", "partitions", "time"}
FENCE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{0,8}[1-9])?Z")


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def valid_time(t):
    m = isinstance(t, str) and FENCE_TIME.fullmatch(t)
    if not m:
        return False
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= mo <= 12 and 1 <= d <= days[mo - 1] and h < 24 and mi < 60 and sec < 60


def check_fence(stored, subject=None, partitions=None):
    """Raise ValueError unless stored (on subject, when known) is an ownership record (8.2)."""
    f = json.loads(stored, object_pairs_hook=no_duplicates)
    if not isinstance(f, dict) or set(f) != FENCE_MEMBERS:
        raise ValueError("members %s, want exactly %s" % (sorted(f) if isinstance(f, dict) else f, sorted(FENCE_MEMBERS)))
    if f["format"] != "creditledger-fence/1":
        raise ValueError("format %r" % f["format"])
    if not (is_int(f["lease_revision"]) and f["lease_revision"] >= 0):
        raise ValueError("lease_revision %r" % f["lease_revision"])
    if not (isinstance(f["owner"], str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", f["owner"])):
        raise ValueError("owner %r" % f["owner"])
    if not (is_int(f["partitions"]) and 1 <= f["partitions"] <= 4096):
        raise ValueError("partitions %r" % f["partitions"])
    if not (is_int(f["partition"]) and 0 <= f["partition"] < f["partitions"]):
        raise ValueError("partition %r" % f["partition"])
    if not valid_time(f["time"]):
        raise ValueError("time %r" % f["time"])
    if jcs(f).encode() != stored:
        raise ValueError("not in its RFC 8785 canonical form")
    if subject is not None and subject != FENCE_PREFIX + str(f["partition"]):
        raise ValueError("the record of partition %d is stored under subject %s" % (f["partition"], subject))
    if partitions is not None and f["partitions"] != partitions:
        raise ValueError("the record counts %d partitions, the stream %d" % (f["partitions"], partitions))
    return f


def parse_export_line(line):
    """(position, subject, stored bytes) of one line of `audit export --format jsonl` (8.3)."""
    obj = json.loads(line, object_pairs_hook=no_duplicates)
    if "event" in obj:
        marker = b',"event":'
        if marker not in line or not line.endswith(b"}"):
            raise SystemExit("FAILED: an export line without the event member as written: %r" % line[:80])
        stored = line[line.index(marker) + len(marker):-1]
        if json.loads(stored) != obj["event"]:
            raise SystemExit("FAILED at position %r: the event member is not the line's end" % obj.get("position"))
    else:
        stored = base64.b64decode(obj["data_base64"], validate=True)
    return obj["position"], obj["subject"], stored


def read_export(path):
    items = [parse_export_line(line.rstrip(b"\n")) for line in open(path, "rb") if line.strip()]
    for want, (pos, _, _) in enumerate(items, 1):
        if pos != want:
            raise SystemExit("FAILED: the export holds position %d where %d belongs (missing_messages)" % (pos, want))
    return items


def summary(events, fences, accounts):
    records = ", %d ownership records" % fences if fences else ""
    return "%d events%s, %d accounts" % (events, records, accounts)


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
    fences = check_fence_vectors(d)
    subjects = check_subject_vectors(d)
    print("OK: %d envelopes, %d roots, an inclusion and a consistency proof, checkpoint of %s; an export with %d ownership record; %d event subjects"
          % (len(envs), len(leaves), origin, fences, subjects))


def check_subject_vectors(d):
    """testdata/subjects.json: FNV-1a 32 of account ids, their partitions and event subjects, and
    subjects that are not where a store files acme's events (FORMAT.md section 1)."""
    sv = json.load(open(d + "/subjects.json"))
    for v in sv["partitioned"]:
        acc, n = v["account_id"], v["partitions"]
        assert fnv1a32(acc.encode()) == v["fnv1a32"], acc
        assert partition_of(acc, n) == v["partition"], (acc, n)
        assert "ledger.events.%d.%s" % (partition_of(acc, n), acc) == v["subject"], v["subject"]
        assert check_event_subject(v["subject"], acc, n, "partition") == "partition"
        assert check_event_subject(v["older_subject"], acc, n, "account") == "account"
    for f in sv["foreign"]:
        try:
            check_event_subject(f["subject"], f["account_id"], f["partitions"], f["scheme"])
        except ValueError:
            continue
        raise AssertionError("taken for the subject of %s's events: %s (%s)" % (f["account_id"], f["subject"], f["why"]))
    return len(sv["partitioned"]) * 2


def check_fence_vectors(d):
    """testdata/fences.*: an export with an ownership record between events (FORMAT.md 8.4)."""
    fv = json.load(open(d + "/fences.json"))
    items = read_export(d + "/fences.jsonl")
    heads, fences = check_messages(items, fv["partitions"])
    pos, subject, stored = items[fv["fence"]["position"] - 1]
    assert (subject, stored) == (fv["fence"]["subject"], fv["fence"]["stored"].encode())
    leaves = [leaf_hash(m) for _, _, m in items]
    assert [x.hex() for x in leaves] == fv["leaf_hashes"] and leaves[pos - 1].hex() == fv["fence"]["leaf_hash"]
    assert [root(leaves[:n]).hex() for n in range(1, len(leaves) + 1)] == fv["roots"]
    inc, con = fv["inclusion"], fv["consistency"]
    assert verify_inclusion(inc["leaf_index"], inc["tree_size"], leaves[inc["leaf_index"]],
                            [bytes.fromhex(p) for p in inc["path"]], root(leaves[: inc["tree_size"]]))
    assert verify_consistency(con["size1"], con["size2"], [bytes.fromhex(p) for p in con["path"]],
                              root(leaves[: con["size1"]]), root(leaves[: con["size2"]]))
    _, size, r = open_checkpoint(open(d + "/fences-checkpoint.txt").read(), open(d + "/checkpoint.vkey").read())
    assert size == len(leaves) and r == root(leaves), "the checkpoint signs the tree with the record"
    for f in fv["foreign"]:
        try:
            if f["subject"].startswith(FENCE_PREFIX):
                check_fence(f["stored"].encode(), f["subject"], fv["partitions"])
            else:  # a record's bytes on an events subject: an event that does not decode
                event_hash(f["stored"].encode())
        except (ValueError, KeyError):
            continue
        raise AssertionError("taken for an ownership record or an event: " + f["why"])
    assert fences == 1 and len(heads) == 2
    return fences


def cmd_log(events_file, checkpoint_file, vkey_file):
    messages = [line.rstrip(b"\n") for line in open(events_file, "rb")]
    check_log([(pos, None, m) for pos, m in enumerate(messages, 1)], checkpoint_file, vkey_file)


def cmd_export(export_file, checkpoint_file, vkey_file, partitions=None):
    check_log(read_export(export_file), checkpoint_file, vkey_file, int(partitions) if partitions else None)


def check_log(items, checkpoint_file, vkey_file, partitions=None):
    origin, size, signed_root = open_checkpoint(open(checkpoint_file).read(), open(vkey_file).read())
    if size > len(items):
        raise SystemExit("FAILED: the checkpoint covers %d messages, the file has %d" % (size, len(items)))
    heads, fences = check_messages(items, partitions)
    if root([leaf_hash(m) for _, _, m in items[:size]]) != signed_root:
        raise SystemExit("FAILED: the events up to position %d do not give the root %s signed" % (size, signed_root.hex()))
    print("OK: %s; positions 1 to %d are what %s signed" % (summary(len(items) - fences, fences, len(heads)), size, origin))


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
    cmds = {"vectors": cmd_vectors, "log": cmd_log, "export": cmd_export, "proof": cmd_proof}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        raise SystemExit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
