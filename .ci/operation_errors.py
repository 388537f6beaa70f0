#!/usr/bin/env python3
"""The error codes each operation of the API can answer, read from the gate's source.

For each handler annotated with `#[utoipa::path(..., operation_id = "...")]`, the codes its
body can answer, and those of the functions it calls (same file, or a path-qualified call to a
function whose name the crate defines once), by the constructor that carries them:
`ApiError::invalid` 422, `conflict` 409, `bad_request` 400, `rate_limited` 429, `Forbidden`
403, an error body written by hand (`UnprocessableEntity` + `"code": ErrorCode::X`) 422, a
vendor's `Reply::refused(StatusCode::X, ErrorCode::Y)` by its status. Codes a conversion
chooses (`ErrorCode::from(&e)`, a `match` feeding one constructor) come from the rules at
`CONVERSIONS`. What every operation of a shape answers (401, 404, 400 for a body or query,
503, ...) is not listed here: `openapi::GENERIC_CODES` holds those.

It reads reachable code, not conditions: a listed code is one the operation's code can
answer; a code answered only through a path this reading does not follow is missing (a list
may be short, never wrong).

    .ci/operation_errors.py          print the table (Rust) for services/parkshare/src/openapi/errors.rs
    .ci/operation_errors.py --check  fail if that file differs from what the source gives
"""
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "services/parkshare/src")
TABLE = os.path.join(SRC, "openapi/errors.rs")

STATUS = {"BAD_REQUEST": 400, "UNAUTHORIZED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404,
          "PAYLOAD_TOO_LARGE": 413, "UNPROCESSABLE_ENTITY": 422, "SERVICE_UNAVAILABLE": 503}
PATTERNS = [
    (r"ApiError::invalid\(\s*ErrorCode::([A-Z]\w*)", 422),
    (r"ApiError::conflict\(\s*ErrorCode::([A-Z]\w*)", 409),
    (r"ApiError::bad_request\(\s*ErrorCode::([A-Z]\w*)", 400),
    (r"ApiError::rate_limited\(\s*ErrorCode::([A-Z]\w*)", 429),
    (r"ApiError::Forbidden\s*\{\s*code:\s*ErrorCode::([A-Z]\w*)", 403),
]
# Codes chosen by a conversion, by what the function's body does: (pattern, [(status, code)]).
CONVERSIONS = [
    # `BookingLimits::check` refused the range: `From<&BookingError>`.
    (r"\.check\(now,[^;]*\)\s*\.map_err\(\|e\| ApiError::invalid\(ErrorCode::from\(&e\)",
     [(422, c) for c in ("EmptyBooking", "BookingTooShort", "BookingTooLong",
                         "BookingInThePast", "BookingTooFarAhead")]),
    # `BookingCaps::admit`: the plate's cap 409, the client's 429.
    (r"CapExceeded::Plate \{ \.\. \} => ApiError::conflict",
     [(409, "PlateBookingLimit"), (429, "ClientBookingLimit")]),
    # `rental::may_rent` refused: `From<&Refusal>`.
    (r"ApiError::conflict\(\(&refusal\)\.into\(\)",
     [(409, "OwnersWaiting"), (409, "OwnersAhead")]),
]
# Codes the reading reaches through a path the operation never takes, with the reason.
_RENEWAL_ONLY = {"AlreadyRenewed"}  # `rentals_one_renewal`: only a term that renews another
_TAKEN_AT_NOW = {"CaptureTimeInFuture", "CaptureTimeTooOld", "InvalidDeviceEventId"}
_PLATE_READ = _TAKEN_AT_NOW | {"MalformedPlate"}  # only a push carrying a plate read
_PER_OBJECT_SECRET = {"CredentialRevoked"}  # revoked-then-rotate is refused for tokens kept one per row
EXCLUDE = {
    "accept_offer": _RENEWAL_ONLY,
    "decline_offer": {"InvalidField"},  # the car's plate is read only when accepting
    "apply_for_rental": _RENEWAL_ONLY,
    "enter_rental": _RENEWAL_ONLY,
    "manual_open": _TAKEN_AT_NOW,  # the event is made now, with a `manual:` id
    "dahua_keep_alive": _PLATE_READ,
    "dahua_device_info": _PLATE_READ,
    "rotate_device_secret": _PER_OBJECT_SECRET,
    "operator_rotate_supervisor_token": _PER_OBJECT_SECRET,
    "holder_rotate_booking_token": _PER_OBJECT_SECRET,
}
# Calls an operation's handler makes only for another operation (`answer_offer` rents the won
# space only when accepting with a car).
CUT = {"decline_offer": {"rent_won_space"}}
# Codes an operation answers through a path this reading cannot follow: a live read is decided
# in a task the lane spawns (`gate::lanes::decide_in_time`), by the pipeline's replay check
# (`gate::record::replayed`).
ALSO = {"post_event": {(409, "DeviceEventIdReused")}}
# A function whose every literal code goes to one constructor through a variable.
VIA_VARIABLE = [(r"ApiError::invalid\(code,", 422)]


def functions():
    fns, by_name = {}, {}
    for root, _, names in os.walk(SRC):
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            text = open(path, encoding="utf-8").read()
            for m in re.finditer(r"\bfn\s+([a-z_][a-z0-9_]*)\s*(?:<[^>{]*>)?\s*\(", text):
                body = body_at(text, m.end() - 1)
                if body is None:
                    continue
                fns[(path, m.group(1))] = body
                by_name.setdefault(m.group(1), []).append(path)
    return fns, by_name


def body_at(text, paren):
    depth, i = 0, paren
    while i < len(text):
        c = text[i]
        depth += c == "("
        depth -= c == ")"
        if depth == 0:
            break
        i += 1
    start = text.find("{", i)
    if start < 0 or ";" in text[i:start]:
        return None
    depth = 0
    for j in range(start, len(text)):
        depth += text[j] == "{"
        depth -= text[j] == "}"
        if depth == 0:
            return text[start:j + 1]
    return None


def direct(body):
    out = set()
    for pattern, status in PATTERNS:
        out |= {(status, m) for m in re.findall(pattern, body)}
    for pattern, codes in CONVERSIONS:
        if re.search(pattern, body):
            out |= set(codes)
    for pattern, status in VIA_VARIABLE:
        if re.search(pattern, body):
            out |= {(status, m) for m in re.findall(r"=> ErrorCode::(\w+)", body)}
    if "UnprocessableEntity()" in body:
        out |= {(422, m) for m in re.findall(r'"code":\s*ErrorCode::(\w+)', body)}
    for status, code in re.findall(r"StatusCode::(\w+),\s*ErrorCode::(\w+)", body):
        out.add((STATUS[status], code))
    if re.search(r"\bvalidate::\w+\(", body):
        out.add((422, "InvalidField"))
    return out


def callees(path, body, fns, by_name):
    found = set()
    calls = re.finditer(r"(?<![.\w])(?:([A-Za-z_]\w*)::)?([a-z_][a-z0-9_]*)\s*(?:::<[^>]*>)?\(", body)
    passed = re.finditer(r"\.(?:map|map_err|and_then|ok_or_else)\(\s*()([a-z_][a-z0-9_]*)\s*\)", body)
    for m in list(calls) + list(passed):
        qual, name = m.group(1), m.group(2)
        paths = by_name.get(name, [])
        if not qual:
            if path in paths:
                found.add((path, name))
            elif len(paths) == 1 and re.search(r"\buse [^;]*\b" + name + r"\b", open(path, encoding="utf-8").read()):
                found.add((paths[0], name))
        elif qual == "super":
            here = os.path.dirname(path)
            if os.path.basename(path) == "mod.rs":
                here = os.path.dirname(here)
            cands = [p for p in paths if p in (os.path.join(here, "mod.rs"), here + ".rs")]
            if len(cands) == 1:
                found.add((cands[0], name))
        elif qual[0].isupper():
            cands = [p for p in paths
                     if re.search(r"impl(?:<[^>]*>)?\s+(?:\w+\s+for\s+)?" + qual + r"\b",
                                  open(p, encoding="utf-8").read())]
            if len(cands) == 1:
                found.add((cands[0], name))
        else:
            cands = [p for p in paths
                     if os.path.basename(p)[:-3] == qual
                     or (os.path.basename(p) == "mod.rs" and os.path.basename(os.path.dirname(p)) == qual)]
            if len(cands) == 1:
                found.add((cands[0], name))
            elif len(paths) == 1:
                found.add((paths[0], name))
    return found


def reachable(key, fns, by_name, seen, cut):
    if key in seen or key[1] in cut:
        return set()
    seen.add(key)
    body = fns[key]
    out = direct(body)
    for callee in callees(key[0], body, fns, by_name):
        out |= reachable(callee, fns, by_name, seen, cut)
    return out


def table():
    fns, by_name = functions()
    ops = {}
    for path in sorted({p for p, _ in fns}):
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"#\[utoipa::path\(", text):
            rest = text[m.start():]
            op = re.search(r'operation_id\s*=\s*"(\w+)"', rest).group(1)
            handler = re.search(r"\bfn\s+([a-z_][a-z0-9_]*)\s*\(", rest).group(1)
            found = reachable((path, handler), fns, by_name, set(), CUT.get(op, set()))
            found |= ALSO.get(op, set())
            ops[op] = sorted(c for c in found if c[1] not in EXCLUDE.get(op, set()))
    lines = [
        "//! Generated by `.ci/operation_errors.py` from the handlers' source (do not edit: run it",
        "//! and paste; `contract::every_operation_lists_the_codes_its_source_answers` checks).",
        "//! The codes each operation's own code can answer, by status, beyond those every",
        "//! operation of its shape answers ([`super::GENERIC_CODES`]).",
        "",
        "use crate::error::ErrorCode as C;",
        "",
        "/// `(operation_id, [(status, code)])`, by operation id.",
        "pub const OPERATION_ERRORS: &[(&str, &[(u16, C)])] = &[",
    ]
    for op in sorted(ops):
        if not ops[op]:
            continue
        lines.append(f'    ("{op}", &[')
        for status, code in ops[op]:
            lines.append(f"        ({status}, C::{code}),")
        lines.append("    ]),")
    lines.append("];")
    # As `cargo fmt` leaves it, so that formatting the crate keeps the file as generated.
    return subprocess.run(["rustfmt", "--edition", "2021"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    generated = table()
    if sys.argv[1:] == ["--check"]:
        current = open(TABLE, encoding="utf-8").read() if os.path.exists(TABLE) else ""
        if current != generated:
            sys.exit(f"{TABLE} differs from what the source gives: run .ci/operation_errors.py > {TABLE}")
        print("operation errors: the table matches the source")
    else:
        sys.stdout.write(generated)
