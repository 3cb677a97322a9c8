"""Verifies the DKIM signature of every message file given, with dkimpy (an independent
implementation), looking keys up in a JSON file instead of DNS.

usage: dkim_verify.py RECORDS.json MESSAGE.eml...
RECORDS.json maps a DNS name (`sel._domainkey.shop.example`) to its TXT value. Prints one line
per message, `ok PATH` or `FAIL PATH: why`, and exits 1 if any failed.
"""
import json
import sys

import dkim

records = json.load(open(sys.argv[1]))


def dnsfunc(name, timeout=5):
    key = name.decode().rstrip(".") if isinstance(name, bytes) else name.rstrip(".")
    return records.get(key, "").encode()


failed = 0
for path in sys.argv[2:]:
    message = open(path, "rb").read()
    try:
        d = dkim.DKIM(message)
        ok = d.verify(dnsfunc=dnsfunc)
        signed = [h.decode().lower() for h in (d.include_headers or [])]
        why = "" if ok else "signature does not verify"
    except Exception as error:  # noqa: BLE001 - reported per message
        ok, signed, why = False, [], repr(error)
    if ok:
        print("ok", path, ":".join(signed))
    else:
        failed += 1
        print("FAIL", path + ":", why)
sys.exit(1 if failed else 0)
