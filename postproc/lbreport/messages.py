"""Every user-facing string, in one catalogue.

`--lang es` adds a second dictionary with the same keys; code only ever calls
`t(key, **params)`. JSON keys and the contract's step names are never translated: they are
data, not messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

EN: dict[str, str] = {
    # --- errors: input -------------------------------------------------------------------
    "err.missing": "No such file: {path}",
    "err.directory": "{path} is a directory, not a capture file.",
    "err.unreadable": "Cannot read {path}: {reason}",
    "err.not_capture": (
        "{path} is not a capture file that tshark understands (pcap or pcapng expected).\n"
        "tshark said: {detail}"
    ),
    "err.cut_in_header": (
        "{path} was cut short before its first packet ({size} bytes: the file ends inside its "
        "header or its first packet): there is nothing to report."
    ),
    "err.empty": "{path} holds no packets: nothing to report.",
    "err.empty_file": "{path} is an empty file (0 bytes), not a capture.",
    "err.not_pcap": (
        "{path} is not a pcap or pcapng capture file, and tshark found no HTTP request in it "
        "(its first bytes match no capture format lbreport expects)."
    ),
    "err.no_http_cut": (
        "{path} was cut short after {frames} frame(s), before any HTTP request to the "
        "balancer: there is nothing to report."
    ),
    "err.no_http_at_all": (
        "{path}: none of its {frames} frames is an HTTP request (looked for on TCP port(s) "
        "{ports}). Is this a capture of the farm's web traffic? Other HTTP ports: --lab LAB.toml."
    ),
    "err.no_http": (
        "{path}: none of its {frames} frames belongs to an HTTP request to the balancer.\n"
        "Check the balancer's address and HTTP port(s) (--lab LAB.toml; `lbreport roles {path}` "
        "suggests one)."
    ),
    "err.tshark_failed": "tshark failed (exit code {code}): {detail}",
    "err.pdml": "Could not read tshark's output ({detail}). tshark said: {stderr}",
    "err.output": "Cannot write {path}: {reason}",
    # --- HTTPS -------------------------------------------------------------------------------
    "err.keylog_missing": "TLS key log not found: {path}",
    "err.keylog_directory": "{path} is a directory, not a TLS key log file.",
    "err.keylog_unreadable": "Cannot read the TLS key log {path}: {reason}",
    "err.keylog_format": (
        "{path} is not a TLS key log: no line like `CLIENT_RANDOM <hex> <hex>` in it (the "
        "NSS key log format that `SSLKEYLOGFILE=FILE curl …` and browsers write)."
    ),
    "err.no_http_tls": (
        "{path}: no request found, but {tls} frame(s) are TLS to the balancer's HTTPS port(s) "
        "({ports}) and the plugin could not tell any request in them. Give the TLS key log "
        "written while capturing (--keylog FILE, e.g. from `SSLKEYLOGFILE=FILE curl -k …`) to "
        "read the HTTPS requests; other HTTPS ports: [farm] https_ports in --lab LAB.toml."
    ),
    "err.no_http_tls_keylog": (
        "{path}: no request found in its {tls} TLS frame(s) on the HTTPS port(s) ({ports}), "
        "even with the key log {keylog}: is it the key log written while this capture was "
        "taken (the same curl or browser session)?"
    ),
    # --- errors: tshark and the plugin ----------------------------------------------------
    "err.tshark_missing": (
        "tshark was not found on PATH. Install it (Debian/Ubuntu: `apt-get install tshark`; "
        "or run `bash scripts/setup.sh` as root)."
    ),
    "err.tshark_old": (
        "tshark {version} is too old: lbreport needs Wireshark {minimum} or newer. "
        "Upgrade it (Debian 12 ships 4.0)."
    ),
    "err.tshark_no_lua": (
        "tshark {version} was built without Lua, so it cannot run the lblab plugin. "
        "Install a build with Lua (Debian's `tshark` package has it)."
    ),
    "err.root_skips_lua": (
        "tshark {version} runs as root and skips user Lua scripts (Wireshark 4.2 and newer "
        "do, unless `run_user_scripts_when_superuser` is set), and lbreport could not run it as "
        "an ordinary user instead (`setpriv` is missing?). Run lbreport as an ordinary user, or "
        "install the plugin for every user with `lbreport install --system`."
    ),
    "err.plugin_not_loaded": (
        "tshark {version} did not load the lblab plugin and said nothing about why. "
        "`lbreport doctor` checks each step."
    ),
    "err.stalled": (
        "tshark stopped making progress for {seconds} s (no CPU used, no output read): it was "
        "stopped. Please report this with the capture."
    ),
    "err.tshark_version": "Could not tell which tshark this is (`tshark -v` said: {detail}).",
    "err.plugin_lua": (
        "The lblab plugin failed in tshark (a Lua error):\n{detail}\n"
        "This is a bug in plugins/lblab.lua; please report it with the capture."
    ),
    "err.labels_cut": (
        "tshark stopped while the lblab plugin was writing its labels (after {frames} "
        "frame(s)); the report would be incomplete. Please report it with the capture."
    ),
    "err.plugin_frames": (
        "The lblab plugin raised a Lua error on {count} frame(s) (first: frame {frame}: "
        "{detail}). The report would be wrong; please report it with the capture."
    ),
    # --- errors: lab file -----------------------------------------------------------------
    "err.lab_missing": "Lab file not found: {path}",
    "err.lab_toml": "Lab file {path} is not valid TOML: {detail}",
    "err.lab_key": "Lab file {path}: {key}: {problem}",
    "lab.unknown_key": "unknown key (expected one of: {expected})",
    "lab.not_table": "must be a table",
    "lab.not_list_str": "must be a list of strings",
    "lab.not_list_port": "must be a list of TCP ports (integers 1..65535)",
    "lab.bad_address": "{value!r} is not an IPv4 or IPv6 address",
    "lab.bad_role": "{value!r} is not a backend name (use M1, M2, M4…; M3 is the balancer)",
    "lab.not_str": "must be a string",
    "lab.bad_marker": "must be a non-empty string without ';' (it separates markers)",
    "lab.bad_policy": "must be \"round-robin\", \"weights\", \"ip-hash\" or \"least-conn\"",
    "lab.bad_weight": "must be a positive integer",
    "lab.weights_needed": "policy \"weights\" needs a weights table naming each backend",
    "lab.weight_unknown": "names {value!r}, which is not a backend in [backends]",
    "lab.need_balancer": "must name the balancer's address(es) when [backends] is given",
    # --- warnings (stderr, the report still comes out) -------------------------------------
    "warn.truncated": (
        "Warning: {path} was cut short in the middle of a packet; this report covers the "
        "{frames} frames before the cut."
    ),
    "warn.stderr": "tshark: {line}",
    # --- progress ---------------------------------------------------------------------------
    "progress.pass1": "Labelling packets (pass 1/2)",
    "progress.pass2": "Reading requests (pass 2/2)",
    "progress.one_pass": "Reading packets (the plugin records them)",
    "progress.labels": "Reading the plugin's labels",
    # --- report header ----------------------------------------------------------------------
    "hdr.title": "lbreport: {capture}",
    "hdr.capture_point": "Capture point",
    "hdr.roles": "Roles",
    "hdr.roles_configured": "configured: {source}",
    "hdr.roles_inferred": "inferred from the traffic (no lab addresses matched the capture)",
    "hdr.truncated": "CUT SHORT: the capture ends in the middle of a packet; frames up to {frame}.",
    "hdr.https": "HTTPS",
    "note.encrypted": (
        "encrypted (TLS): give --keylog FILE to see method, URI and status of {count} "
        "request(s)."
    ),
    "note.encrypted_m3": (
        "encrypted (TLS) on the front leg: method, URI and status of {count} request(s) come "
        "from M3's plain back leg (what the backend was asked and answered); give --keylog "
        "FILE to read the front leg itself."
    ),
    "note.encrypted_both": (
        "encrypted (TLS) on both legs (M3 re-encrypts to the backends): method, URI and "
        "status of {count} request(s) cannot be known from this capture, and each request's "
        "backend is linked by timing only. Give --keylog FILE (with the backends' secrets too) "
        "to read them."
    ),
    "cp.client": "client view (front leg only: client ↔ M3)",
    "cp.M3": "M3 view (both legs: client ↔ M3 ↔ backends)",
    "cp.backend": "backend view at {role} (back leg only: M3 ↔ {role})",
    "cp.unknown": "unknown (no leg seen)",
    "lab.default_name": "the classic lab (embedded default)",
    # --- per request ------------------------------------------------------------------------
    "req.title": "Request {index}",
    "req.client": "Client",
    "req.request": "Request",
    "req.client_xff": (
        "(the client sent its own X-Forwarded-For: {value}; not taken as its address)"
    ),
    "req.status": "Status",
    "req.backend": "Backend",
    "req.backend_unknown": "unknown",
    "req.timings": "Timings",
    "req.anomalies": "Anomalies",
    "req.none": "none",
    "req.no_status": "no response",
    "req.status_encrypted": "unknown (the response is encrypted)",
    "req.encrypted": "(encrypted)",
    "req.status_back_leg": "{status} (the backend's answer on the back leg: the front leg is "
                           "encrypted)",
    "req.by_balancer": "none: answered by the balancer itself (a redirect, HTTP {status})",
    "evidence.back-leg": "back-leg (the upstream request is in the capture: certain)",
    "evidence.marker": "marker (the response names the backend)",
    "evidence.arp": "arp (M3 asked for this backend's address meanwhile: weak)",
    "evidence.none": "none (no evidence in this capture)",
    "timing.handshake_rtt": "handshake RTT (SYN → SYN/ACK)",
    "timing.request_to_upstream": "request → upstream request",
    "timing.backend_time": "backend time (up-request → up-response)",
    "timing.time_to_first_byte": "time to first byte (request → response)",
    "timing.total": "total (first → last frame)",
    "timing.na": "n/a",
    "ladder.frame": "frame",
    "ladder.time": "+ms",
    # --- anomalies (code → sentence from the Anomaly's fields; step names via step.*) ----
    "anom.no-response": "no response",
    "anom.missing-step": "missing step: {step}",
    "anom.repeated-step": "repeated step: {step} ×{count}",
    "anom.rst": "connection reset (RST): {src}→{dst}",
    "anom.retransmission": "retransmission: {count} frame(s)",
    "anom.http-5xx": "server error: HTTP {status}",
    "anom.upstream-5xx": "a backend answered HTTP {status} ({backend})",
    "anom.failover": "failover between backends: {path}",
    "anom.no-upstream": "no upstream request from M3 in the capture",
    # --- issues 18/19 (helper-7): interim answers, caches, no balancer, requests conserved ----
    "step.interim": "interim",
    "step.up-interim": "up-interim",
    "step.FIN-server": "FIN-server",
    "evidence.cache": "cache (the balancer answered from its cache)",
    "cp.no-balancer": (
        "no balancer: nothing in this capture shows a load balancer (a client and the web "
        "server(s) it talked to)"
    ),
    "hdr.balancer": "Balancer",
    "hdr.roles_inferred_partly": (
        "inferred from the traffic ({count} of the lab's addresses are in the capture, but the "
        "lab does not describe it: its balancer is not there as one)"
    ),
    "note.xff_only": (
        "the only sign of a balancer is the X-Forwarded-For header, which is weak evidence: a "
        "client can write that header itself."
    ),
    "req.backend_no_balancer": "n/a (no balancer: the web server answered itself)",
    "req.backend_na": "n/a",
    "req.by_cache": "none: answered from the balancer's cache",
    "req.cache": "the balancer's cache",
    "req.status_interim": "{status} (after the interim answer(s) {interim})",
    "timing.time_to_interim": "time to the interim answer (request → interim)",
    "noresp.lost-segment": "no response: the response's first segment was not captured (lost)",
    "noresp.cut-short": "no response: the capture was cut short before it",
    "sum.cache_hits": "Cache hits",
    "sum.cache_hits_line": (
        "{count} request(s) answered by the balancer from its cache: no backend served them, "
        "so they are neither in the requests per backend nor in the balance verdict"
    ),
    "sum.backends_no_balancer": "n/a: no balancer in this capture",
    "sum.http_requests": "HTTP requests tshark read",
    "sum.http_requests_line": (
        "{seen} = {front} from clients + {upstream} from M3 to backends + {direct} direct + "
        "{outside} in no request{other} (+ {copies} retransmitted copies)"
    ),
    "sum.http_requests_other": " ({count} into other balancers)",
    "sum.http_requests_missing": "; {count} of them are not in this report",
    "sum.http_requests_orphans": (
        " (tshark read {count} response(s) whose request headers it could not decode, as "
        "with HTTP/2 header compression it could not follow)"
    ),
    "bal.not_judged_no_balancer": (
        "not judged: this capture shows no balancer (each web server answered its own "
        "requests)."
    ),
    "err.no_http_responses_only": (
        "{path}: tshark read {count} HTTP response(s) in its {frames} frames but not the "
        "request(s) they answer: their request headers could not be decoded (HTTP/2 header "
        "compression that tshark could not follow, e.g. the connection's start or a HEADERS "
        "frame is missing). Nothing to report."
    ),
    "roles.no_balancer": (
        "{path}: nothing in this capture shows a load balancer (a client and the web server(s) "
        "it talked to), so there is no lab file to write. `lbreport report {path}` reports its "
        "requests."
    ),
    # --- summary ----------------------------------------------------------------------------
    "sum.title": "Summary",
    "sum.requests": "Requests",
    "sum.frames": "Frames",
    "sum.frames_detail": "{total} total = {inreq} in requests + {other} other",
    "sum.frames_by_kind": "{total} total = {inreq} in requests + {other} other ({kinds})",
    "sum.kind.other": "other",
    "sum.direct": "Direct requests",
    "sum.direct_count": "{count}, listed below (not through the balancer)",
    "direct.title": "Direct requests (not through the balancer)",
    "direct.note": (
        "Each went from a client straight to a backend, without M3: not a balanced request, so "
        "neither in the requests above nor in the balance verdict."
    ),
    "sum.status_counts": "Status codes",
    "sum.backends": "Requests per backend",
    "sum.other_balancer": "Left out",
    "sum.other_balancer_line": (
        "another balancer, {address}, received {requests} HTTP request(s) in this capture (a "
        "second farm?): this report explains one farm only; give --lab naming that balancer "
        "to report the other"
    ),
    "warn.other_balancer": (
        "Warning: {path} holds another balancer, {address} ({requests} request(s)), left out "
        "of this report."
    ),
    "sum.balance": "Balance",
    "sum.latency": "Latency ({basis})",
    "sum.latency_basis.time_to_first_byte": "time to first byte",
    "sum.latency_basis.backend_time": "backend time",
    "sum.latency_none": "no request has a measurable latency",
    "sum.status_encrypted": "encrypted (unknown)",
    "sum.no_status": "no response",
    "bal.matches": "matches {policy}: expected {expected}, observed {observed}.",
    "bal.differs": "does NOT match {policy}: expected {expected}, observed {observed}.",
    "bal.sequence": "The order of backends also follows the policy's rotation.",
    "bal.sequence_broken": "The order of backends breaks the rotation at request {index}.",
    "bal.unknown_some": (
        "{count} request(s) whose backend this capture does not show were left out of the "
        "verdict."
    ),
    "bal.not_judged_backend": (
        "not judged: a capture at a backend only sees the requests that backend served."
    ),
    "bal.not_judged_unknown": "not judged: no request's backend is known in this capture.",
    "bal.not_judged_single": "not judged: only one backend is known.",
    "policy.round-robin": "round robin",
    "policy.weights": "weights {weights}",
    "policy.ip-hash": "ip-hash",
    "policy.least-conn": "least-conn",
    "bal.not_judged_one": (
        "not judged: only one request has a known backend (any policy may send one request "
        "anywhere)."
    ),
    "bal.none": "no policy declared; observed {observed}: {verdicts}.",
    "bal.with": "consistent with {policies}",
    "bal.with_none": "consistent with none of round robin, ip-hash and least-conn",
    "bal.not_with": "not with {policy}: {why}",
    "bal.cannot": "{policy} cannot be judged: {why}",
    "bal.and": "{head} and {last}",
    "bal.also": "The sequence is consistent with {policies}.",
    "bal.weights_hint": (
        "Weights cannot be checked without knowing them: declare them in the lab file "
        "([policy] kind = \"weights\", weights = { M1 = 3, M2 = 1 })."
    ),
    "bal.matches_ip_hash": "matches ip-hash: each client address always went to the same backend.",
    "bal.matches_least_conn": (
        "matches least-conn as far as the capture can tell: each of the {count} request(s) "
        "dispatched while others were in flight went to a backend with the fewest in flight."
    ),
    "bal.differs_why": "does NOT match {policy}: {why}.",
    "bal.not_judged_policy": "not judged: this capture cannot tell {policy}: {why}.",
    "bal.least_conn_basis": (
        "(least-conn: in-flight counts bounded by the request and response times in the "
        "capture; the balancer's own counter is not in it.)"
    ),
    "bal.why.rotation": "the order of backends breaks the rotation at request {index}",
    "bal.why.client-split": "client {client} went to {backends}",
    "bal.why.busier": (
        "request {index} went to {backend}, which had {busy} request(s) in flight, while "
        "{other} had at most {idle}"
    ),
    "bal.why.no-overlap": (
        "no request was dispatched while another was in flight, so every backend had the "
        "fewest"
    ),
    "bal.why.no-repeat-client": "no client address made two requests with a known backend",
    # --- roles command ------------------------------------------------------------------------
    "roles.header": (
        "# Lab file inferred by `lbreport roles` from {capture}.\n"
        "# Check it, then use it with: lbreport report CAPTURE --lab THIS_FILE.toml"
    ),
    "roles.markers_hint": (
        "# Optional: a text only that backend's responses contain, e.g.\n"
        "# M1 = \"Soy la máquina 1\""
    ),
    "roles.none": "No roles could be inferred from {path}: no HTTP traffic to a balancer was seen.",
    # --- doctor --------------------------------------------------------------------------------
    "install.not_listed": (
        "`tshark -G plugins` does not list {path}: Wireshark will not load it (is this folder "
        "the one `tshark -G folders` names?)"
    ),
    "install.root_skips": (
        "Wireshark {version} runs as root here and, like every Wireshark since 4.2, skips "
        "personal Lua plugins as root, so {path} is not loaded for root. Run Wireshark as your "
        "own user (capture rights come from the `wireshark` group: `sudo usermod -aG wireshark "
        "$USER`, then log in again), or install for every user, root included, with `lbreport "
        "install --system`. `lbreport report` works either way (it dissects as an ordinary user)."
    ),
    "doc.ok": "ok",
    "doc.fail": "FAIL",
    "doc.tshark": "tshark on PATH",
    "doc.version": "tshark version ≥ {minimum}",
    "doc.lua": "tshark built with Lua",
    "doc.plugin": "lblab plugin",
    "doc.plugin_version": "plugin version",
    "doc.untested": (
        "{version} (newer than {newest}, the newest Wireshark this release was tested on: "
        "it should work; report anything odd)"
    ),
    "doc.as_user": (
        "as root, tshark {version} skips user Lua scripts: lbreport runs it as uid {uid} "
        "for the dissection (for the GUI: run Wireshark as your own user, or `lbreport "
        "install --system`)"
    ),
    "doc.plugin_loads": "plugin loads without Lua errors",
    "doc.plugin_repo": "{path} (passed with -X)",
    "doc.plugin_installed": "installed in Wireshark's plugin folder ({path})",
    "doc.plugin_not_registered": "the plugin loaded but registered no lblab protocol: {detail}",
    "doc.all_ok": "Everything lbreport needs is in place.",
    "doc.some_failed": (
        "Some checks failed; fix them in order (each one depends on the ones above)."
    ),
    # --- step names (docs/fields.md) as people read them; JSON keeps the contract's names ----
    "step.SYN": "SYN",
    "step.SYN/ACK": "SYN/ACK",
    "step.ACK": "ACK",
    "step.request": "request",
    "step.ACK-req": "ACK-req",
    "step.data": "data",
    "step.response": "response",
    "step.ACK-resp": "ACK-resp",
    "step.FIN-client": "FIN-client",
    "step.FIN-M3": "FIN-M3",
    "step.last-ACK": "last-ACK",
    "step.RST": "RST",
    "step.up-SYN": "up-SYN",
    "step.up-SYN/ACK": "up-SYN/ACK",
    "step.up-ACK": "up-ACK",
    "step.up-request": "up-request",
    "step.up-ACK-req": "up-ACK-req",
    "step.up-data": "up-data",
    "step.up-response": "up-response",
    "step.up-ACK-resp": "up-ACK-resp",
    "step.up-last-ACK": "up-last-ACK",
    "step.up-RST": "up-RST",
    "step.up-FIN-M3": "up-FIN-M3",
    "step.up-FIN-backend": "up-FIN-backend",
    "step.ACK-FIN": "ACK-FIN",
    "step.FIN-backend": "FIN-backend",
    "step.up-ACK-FIN": "up-ACK-FIN",
    "step.TLS-ClientHello": "TLS-ClientHello",
    "step.up-TLS-ClientHello": "up-TLS-ClientHello",
    "step.TLS-ServerHello": "TLS-ServerHello",
    "step.up-TLS-ServerHello": "up-TLS-ServerHello",
    "step.TLS-Finished": "TLS-Finished",
    "step.up-TLS-Finished": "up-TLS-Finished",
    "step.TLS-close": "TLS-close",
    "step.up-TLS-close": "up-TLS-close",
    "step.ARP-who-has": "ARP-who-has",
    "step.ARP-reply": "ARP-reply",
    "step.ND-solicit": "ND-solicit",
    "step.ND-advert": "ND-advert",
    # --- CSV header (one row per request); the cells stay data (codes, numbers) -----------------
    "csv.index": "index",
    "csv.client": "client",
    "csv.method": "method",
    "csv.uri": "uri",
    "csv.status": "status",
    "csv.backend": "backend",
    "csv.backend_evidence": "backend_evidence",
    "csv.frames": "frames",
    "csv.handshake_rtt": "handshake_rtt",
    "csv.request_to_upstream": "request_to_upstream",
    "csv.backend_time": "backend_time",
    "csv.time_to_first_byte": "time_to_first_byte",
    "csv.total": "total",
    "csv.anomalies": "anomalies",
    # --- HTML report ------------------------------------------------------------------------------
    "html.lang": "en",
    "html.legend": "Legend",
    "html.leg.front": "front leg (client ↔ M3)",
    "html.leg.back": "back leg (M3 ↔ backend)",
    "html.leg.arp": "ARP / neighbour discovery (who has this address?)",
    "html.flagged": "TCP finding (retransmission, duplicate ACK…)",
    "html.requests": "Requests",
    "html.col.index": "#",
    "html.col.evidence": "Evidence",
    "html.col.latency": "Latency",
    "html.col.frames": "Frames",
    "html.diagram": "Sequence diagram of request {index}",
    "html.open_hint": "Each request opens to show its sequence diagram, timings and anomalies.",
    "html.chart_backends": "Requests per backend",
    "html.chart_latency": "Latency of each request ({basis}), sorted; lines at p50 and p90",
    "html.chart_latency_none": "No request has a measurable latency in this capture.",
    "html.bar": "request {index}: {backend}, {value}",
    "html.footer": "Written by lbreport {version}. Self-contained: no network, no scripts.",
    "html.anomalies_count": "{count} anomaly(ies)",
    "html.expected": "what the balancing policy expects",
    # --- batch (a directory of captures, one row each) -------------------------------------------
    "batch.col.file": "file",
    "batch.col.requests": "requests",
    "batch.col.complete": "complete",
    "batch.col.backends": "backends (evidence)",
    "batch.col.anomalies": "anomalies",
    "batch.col.anomaly_kinds": "anomaly kinds",
    "batch.col.capture_point": "capture point",
    "batch.col.truncated": "cut short",
    "batch.col.error": "error",
    "batch.title": "lbreport batch: {path}",
    "batch.yes": "yes",
    "batch.no": "no",
    "batch.progress": "Reading captures",
    "batch.done": "{total} capture(s): {ok} reported, {failed} with an error.",
    "batch.err.missing": "No such directory: {path}",
    "batch.err.not_dir": "{path} is not a directory (give the folder that holds the captures).",
    "batch.err.unreadable": "Cannot list {path}: {reason}",
    "batch.err.no_captures": (
        "{path} holds no capture files ({patterns}), in it or in its subfolders."
    ),
    "batch.err.internal": "internal error: {detail}",
    "batch.err.jobs": "--jobs must be at least 1.",
    # --- install, doctor, bundle, live ----------------------------------------------------
    "install.warning": "warning: {text}",
    "install.err.folders": (
        "`tshark -G folders` did not name these folders: {missing}. Is this Wireshark built "
        "with Lua?"
    ),
    "install.err.write": "Cannot write {path}: {reason}",
    "install.err.write_system": (
        "Cannot write {path}: {reason} (--system writes Wireshark's global folder: run it as "
        "root)"
    ),
    "install.err.no_profile": "The LB-Lab profile is missing from the repository: {path}",
    "install.err.no_plugin": "The plugin is missing from the repository: {path}",
    "install.installed": "installed plugin {version}: {path}",
    "install.identical": "plugin {version} already installed (identical): {path}",
    "install.replaced": "replaced plugin {old} with {version}: {path}",
    "install.unknown_version": "of unknown version",
    "install.profile_installed": "installed profile {profile} file {name}: {path}",
    "install.profile_unchanged": "unchanged profile {profile} file {name}: {path}",
    "install.profile_replaced": "replaced profile {profile} file {name}: {path}",
    "install.other_copy": (
        "another copy ({version}) is loaded too: {path}. Wireshark registers the lblab "
        "protocol twice and the second copy fails; remove one (`{command}` if it is the other "
        "folder's)."
    ),
    "install.use_it": (
        "use it: wireshark -C {profile} -r CAPTURE  (or pick the {profile} profile in the "
        "status bar); `lbreport report` now uses this copy"
    ),
    "install.err.not_lblab": "{path} is not the lblab plugin (no Proto(\"lblab\")): left alone",
    "install.removed": "removed plugin {version}: {path}",
    "install.unknown_version_paren": "(unknown version)",
    "install.nothing_to_remove": "no plugin to remove at {path}",
    "install.profile_removed": "removed profile {profile} file {name}: {path}",
    "install.profile_kept": (
        "kept {path}: it also holds {files}, written by Wireshark, not by install (delete the "
        "folder if you no longer want the profile)"
    ),
    "install.profile_folder_removed": "removed profile folder {path}",
    "install.no_profile": "no {profile} profile at {path}",
    "install.hosts_removed": (
        "removed the profile's hosts file (the names an earlier `install --lab` wrote; give "
        "--lab again to keep them): {path}"
    ),
    "install.hosts_no_address": "{lab} names no address: no hosts file written",
    "install.hosts_foreign": (
        "kept {path}: it was not written by lbreport install (its first line is not "
        "`{marker}`), so the lab's names were not written"
    ),
    "install.version_repo": "{version} (repository copy, not installed)",
    "install.version_unknown": "unknown",
    "install.version_at": "{version} at {path}",
    "install.version_twice": (
        "installed twice ({where}): remove one with `lbreport install --uninstall`"
    ),
    "install.version_installed": "{version} installed at {path}",
    "install.version_differs": (
        "installed {version} at {path} differs from the repository's {repo}: run `lbreport "
        "install` to update it"
    ),
    "doc.lua_version": "Lua {version}",
    "bundle.err.no_version": "{path} declares no VERSION: cannot label the bundle",
    "bundle.err.no_plugin": "The plugin is missing from the repository: {path}",
    "bundle.err.write": "Cannot write {path}: {reason}",
    "live.started": "lbreport live on {iface} (capture filter: {bpf})",
    "live.roles": "roles: {roles}",
    "live.roles_configured": "configured: {source}",
    "live.roles_inferred": "inferred from the traffic (give --lab LAB.toml to fix them)",
    "live.writing": "writing the capture to {path}",
    "live.each_request": "each request is shown once its connection is closed; Ctrl-C stops.",
    "live.starting": "starting dumpcap and tshark with the lblab plugin…",
    "live.capturing": "lbreport live: capturing now on {iface}.",
    "live.running": (
        "── live: {requests} request(s) · {backends} · {errors} error(s) (5xx or no response)"
    ),
    "live.no_backend_yet": "no backend yet",
    "live.no_packet_yet": (
        "lbreport live: no packet yet: nothing matched the capture filter on {iface} in "
        "{seconds} s (filter: {bpf}). Is the lab sending traffic through this interface (curl "
        "http://M3/ from the client)? Another interface, or --filter '' to see everything."
    ),
    "live.lua_error": "lbreport live: the lblab plugin raised a Lua error: {detail}",
    "live.err.ended": "the capture on {iface} ended: {reason}",
    "live.no_packet": "lbreport live: no packet was captured on {iface} (filter: {bpf}).",
    "live.late_frames": (
        "lbreport live: {count} frame(s) arrived after their request was printed; they are in "
        "the summary and the written file."
    ),
    "live.err.write": "Cannot write {path}: {reason}",
    "live.err.no_iface": (
        "No such interface: {iface}. Interfaces dumpcap can capture on "
        "here:\n{interfaces}\n(On the lab host this is usually the host-only interface, e.g. "
        "vboxnet0; inside M3, its own interface, e.g. eth0 or enp0s8.)"
    ),
    "live.err.no_permission": (
        "No permission to capture on {iface}: run lbreport live as root (sudo), or let your "
        "user capture: `sudo dpkg-reconfigure wireshark-common` (answer Yes), `sudo usermod "
        "-aG wireshark $USER`, then log in again."
    ),
    "live.err.dumpcap": "dumpcap cannot capture on {iface}: {reason}",
    "live.no_message": "no message",
    "live.none_listed": "(none listed)",
    # --- the command line's help (cli.py: help.<command>[.<parameter>], help.opt.<parameter>)
    "help.app": "Explain every HTTP request's journey through a load-balanced web farm.",
    "help.report": (
        "Report each request's lifecycle: roles, steps, backend and evidence, timings."
    ),
    "help.report.keep_pdml": ("Read tshark's two-pass PDML (not the plugin's own labels) and "
                               "save it to FILE."),
    "help.roles": "Print the roles inferred from a capture as a ready-to-use lab file.",
    "help.doctor": "Check tshark, its Lua support and the plugin; say how to fix what fails.",
    "help.install": (
        "Install the plugin and the LB-Lab profile into Wireshark's folders (tshark -G folders)."
    ),
    "help.install.system": "Wireshark's global Lua plugin folder (root).",
    "help.install.uninstall": "Remove what install put there.",
    "help.install.lab": (
        "Lab file (TOML): name its hosts in the profile (a hosts file: M3, M1, M2…, client) for "
        "Conversations, Endpoints, Flow Graph and the address columns."
    ),
    "help.bundle": (
        "Write the student zip: plugin, LB-Lab profile (importable), guide in English and "
        "Spanish."
    ),
    "help.bundle.output": "Write the zip to FILE. Default: lblab-student-VERSION.zip",
    "help.batch": (
        "One row per capture of a folder (a class's captures): requests, complete lifecycles, "
        "backends and evidence, anomalies, capture point, errors. Exit 1 only when the folder "
        "itself is unusable; a capture that fails is a row with its error."
    ),
    "help.batch.directory": "A folder of captures (subfolders too).",
    "help.batch.jobs": "Captures read at once. Default: cores.",
    "help.batch.lab": "Lab file (TOML) for every capture.",
    "help.live": (
        "Explain each request as it happens: capture on an interface of the running lab."
    ),
    "help.live.interface": "Interface to capture on.",
    "help.live.count": "Stop after N requests.",
    "help.live.duration": "Stop after S seconds.",
    "help.live.write": "Also save the capture (pcapng).",
    "help.live.bpf": "Capture filter (BPF). Default: the farm's traffic.",
    "help.opt.capture": "A pcap or pcapng file.",
    "help.opt.lab": "Lab file (TOML). Default: the classic lab.",
    "help.opt.fmt": "Output format.",
    "help.opt.output": "Write to FILE.",
    "help.opt.lang": (
        "Language of what is printed: en or es (JSON never changes). Default: LC_ALL, "
        "LC_MESSAGES or LANG (es…: Spanish), else English."
    ),
    "help.opt.keylog": (
        "TLS key log (NSS format, e.g. from SSLKEYLOGFILE) to read HTTPS. Default: the lab "
        "file's tls.keylog."
    ),
    "err.lang": "--lang {value}: expected one of {choices}",
    "help.opt.help": "Show this message and exit.",
    "bundle.wrote": "wrote {path} (lblab {version}): {members}",
}

LANGUAGES = ("en", "es")
_catalogue: dict[str, str] = EN


def set_language(lang: str) -> None:
    """Choose the catalogue for this process (`--lang`). Spanish lives in messages_es.py with
    exactly EN's keys (tests/test_lang.py checks it); a missing key falls back to English."""
    global _catalogue
    if lang == "en":
        _catalogue = EN
    elif lang == "es":
        from lbreport.messages_es import ES

        _catalogue = ES
    else:
        raise ValueError(f"unknown language {lang!r} (expected one of {', '.join(LANGUAGES)})")


def environment_language(environ: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for when no --lang is given, read as gettext reads
    the messages' locale: the first of LC_ALL, LC_MESSAGES and LANG that is set and not empty;
    Spanish when it names Spanish (es, es_ES.UTF-8, es_AR, …), else English (C, POSIX, en_*,
    any language lbreport does not speak)."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "es" if re.split(r"[_.@-]", value, maxsplit=1)[0].lower() == "es" else "en"
    return "en"


def language() -> str:
    return _catalogue.get("html.lang") or "en"


def t(key: str, /, **params: object) -> str:
    """The message `key` in the current language, formatted with `params`."""
    template = _catalogue.get(key) or EN[key]
    return template.format(**params) if params else template


def has(key: str) -> bool:
    return key in _catalogue or key in EN


def step_name(step: str) -> str:
    """A contract step name (`up-request`) as the reader's language says it."""
    key = f"step.{step}"
    return t(key) if key in EN else step
