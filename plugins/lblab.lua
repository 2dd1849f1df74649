-- lblab.lua: a Wireshark postdissector that explains a load-balanced web farm.
--
-- For every packet it adds the roles of both ends (client, M3, M1, M2, ... any
-- number of backends), the index of the HTTP request the packet belongs to, its
-- lifecycle step, its leg and the backend that served the request, with the
-- evidence for that backend. Works on Wireshark 4.0 (Lua 5.2) and 4.4+ (Lua 5.4).
--
-- Field contract (docs/fields.md in the repository; add, never rename):
--   lblab.src_role lblab.dst_role lblab.req lblab.step lblab.leg lblab.flags
--   lblab.backend lblab.backend_evidence lblab.conn lblab.client lblab.method
--   lblab.uri lblab.status lblab.marker lblab.arp_target lblab.role_def
--
-- Steps:
--   front: SYN SYN/ACK ACK request ACK-req data response ACK-resp FIN-client FIN-M3
--          last-ACK RST
--   back:  up-SYN up-SYN/ACK up-ACK up-request up-ACK-req up-data up-response
--          up-ACK-resp up-FIN-M3 up-FIN-backend up-last-ACK up-RST
--   direct: the same names as front (FIN-M3 reads FIN-backend): a client talking
--          HTTP to a backend itself, not through the balancer
--   arp:   ARP-who-has ARP-reply ND-solicit ND-advert
--   either side's ACK of the other's FIN: ACK-FIN / up-ACK-FIN
-- Backend evidence: back-leg, marker, arp, none.
-- Frames in no request keep their roles and get lblab.kind (ssh, dns, icmp, arp,
-- nd, neighbour-refresh, direct, http, tls, ntp, mdns, dhcp, tcp, udp, other).
--
-- How labels are made (docs/architecture.md, "Labels that need the future"):
--   * On a frame's first visit the plugin records compact facts (integers in
--     arrays, one small record per connection, HTTP request and ARP) and labels
--     the frame from what it knows so far (single-pass tshark sees these).
--   * When a frame is shown again (tshark -2, the GUI), the plugin first
--     "resolves" once: infers roles, numbers the requests, links back-leg
--     requests, ARPs and failed upstream connections to front requests, and
--     caches each frame's request index. Labels then come from those tables,
--     so they never depend on the order in which frames are re-visited.
--   * tshark -q -z lblab,labels (lbreport's run): one pass that only records,
--     then, once the capture is read, every frame's labels written one line each
--     from the same tables (the same labels as a second pass, without it).

local VERSION = "0.1.0"

if set_plugin_info then
    set_plugin_info({
        version = VERSION,
        description = "Labels client/M3/backend roles, request index and lifecycle step of a load-balanced HTTP farm",
        repository = "lblab (plugins/lblab.lua)",
    })
end

local lblab = Proto("lblab", "Load-balancer lab (lblab)")

------------------------------------------------------------------------------
-- Fields and expert infos: each defined once, registered from the same list
-- (the order of the list is the order `tshark -G fields` shows).
------------------------------------------------------------------------------
local pf, ex, registered = {}, {}, {}
do
local function field(name, make, ...)
    pf[name] = make("lblab." .. name, ...)
    registered[#registered + 1] = pf[name]
end
field("src_role", ProtoField.string, "Source role")
field("dst_role", ProtoField.string, "Destination role")
field("req", ProtoField.uint32, "Request index")
field("step", ProtoField.string, "Lifecycle step")
field("leg", ProtoField.string, "Leg")
field("flags", ProtoField.string, "TCP findings")
field("backend", ProtoField.string, "Backend that served the request")
field("backend_evidence", ProtoField.string, "Backend evidence")
field("conn", ProtoField.uint32, "Connection index (tcp.stream)")
field("client", ProtoField.string, "Client of the request")
field("method", ProtoField.string, "HTTP method")
field("uri", ProtoField.string, "HTTP URI")
field("status", ProtoField.uint16, "HTTP status")
field("marker", ProtoField.string, "Backend named by a response marker")
field("arp_target", ProtoField.string, "Role whose address is asked for")
field("role_def", ProtoField.string, "Role address (first seen here)")
field("pkt", ProtoField.string,
    "Labels, compact (req;step;src;dst;leg;backend;evidence;flags;arp_target;kind;direct)")
field("client_xff", ProtoField.string, "X-Forwarded-For written by the client itself")
field("kind", ProtoField.string, "Kind of frame outside any request (ssh, dns, icmp, arp, direct...)")
field("direct", ProtoField.uint32, "Direct request index (a client fetching from a backend itself)")
field("scheme", ProtoField.string, "Scheme of the request (http, https)")
field("http_version", ProtoField.string, "HTTP version of the request (1.0, 1.1, 2)")
field("encrypted", ProtoField.bool, "Encrypted: method, URI and status unreadable (no TLS key log)")
field("debug", ProtoField.string, "Debug: what the plugin inferred (preference lblab.debug)")
field("interim", ProtoField.uint16, "Interim (1xx) answer before the final response")
field("http_requests_seen", ProtoField.uint32,
    "HTTP requests tshark dissected in the whole capture (HTTP/1 and HTTP/2), copies included")
field("http_request_copies", ProtoField.uint32,
    "Of those, retransmitted copies of a request already counted")
field("balancer_evidence", ProtoField.string,
    "What shows the balancer (lab-file, back-leg, arp-for-third-hosts, marker, x-forwarded-for); "
    .. "empty: no balancer in this capture")
field("http_ports", ProtoField.string, "TCP ports the capture's HTTP requests were sent to")
field("lab_applied", ProtoField.bool, "The configured lab's addresses were used (lblab.lab_when_seen)")
field("other_balancer", ProtoField.string,
    "Another balancer in the capture, left out: address=HTTP requests it received")
field("lua_error", ProtoField.string,
    "The plugin's Lua error on this frame, in -z lblab,labels (a tree carries _ws.lua.error)")

local experts = {}
local function expert_info(name, text, group, severity)
    ex[name] = ProtoExpert.new("lblab.expert." .. name, text, group, severity)
    experts[#experts + 1] = ex[name]
end
expert_info("orphan_backleg", "Back-leg connection serving no client request",
    expert.group.SEQUENCE, expert.severity.WARN)
expert_info("no_response", "Request without a response", expert.group.SEQUENCE, expert.severity.WARN)
expert_info("rst", "Connection reset (RST)", expert.group.SEQUENCE, expert.severity.WARN)
expert_info("balancer_5xx", "5xx answered by the balancer", expert.group.RESPONSE_CODE, expert.severity.ERROR)
expert_info("failover", "Failover: the balancer tried another backend", expert.group.SEQUENCE, expert.severity.NOTE)
expert_info("one_pass", "tshark -2 without a filter: its first pass built no tree, so these labels "
    .. "come from one pass (use tshark -2 -Y frame)", expert.group.PROTOCOL, expert.severity.WARN)
lblab.experts = experts
end

-- The per-packet labels, in the order of the compact lblab.pkt field (lbreport
-- reads that order from `tshark -G values`, lblab.vocab.pkt); L.<name> is a slot.
local LABELS = { "req", "step", "src_role", "dst_role", "leg", "backend", "backend_evidence",
    "flags", "arp_target", "kind", "direct" }
local L = {}
for i, name in ipairs(LABELS) do L[name] = i end

------------------------------------------------------------------------------
-- Preferences (real values arrive through prefs_changed)
------------------------------------------------------------------------------
lblab.prefs.balancer = Pref.string("Balancer (M3) address(es)", "",
    "Comma-separated addresses of the load balancer. Empty: inferred from the traffic.")
lblab.prefs.backends = Pref.string("Backends", "",
    "Comma-separated ROLE=address pairs, e.g. M1=192.168.56.101,M2=192.168.56.102. Empty: inferred.")
lblab.prefs.clients = Pref.string("Clients", "",
    "Comma-separated client addresses (hosts talking HTTP to M3 are clients anyway).")
lblab.prefs.ports = Pref.string("HTTP port(s)", "80",
    "Comma-separated TCP ports the balancer and backends serve HTTP on.")
lblab.prefs.https_ports = Pref.string("HTTPS port(s)", "443",
    "Comma-separated TCP ports the balancer serves HTTPS on (TLS). With a key log "
    .. "(Protocols > TLS > (Pre)-Master-Secret log filename) the requests are read; without, "
    .. "the TLS records still show each exchange.")
lblab.prefs.debug = Pref.bool("Debug log", false,
    "Log what the plugin infers (roles, requests) to Wireshark's log at debug level "
    .. "(tshark --log-level debug, or the GUI's log window). Off: nothing is logged.")
lblab.prefs.compact = Pref.bool("Compact labels (for lbreport)", false,
    "One lblab.pkt field per packet instead of the separate label fields: lbreport reads only "
    .. "that (less PDML to parse). Leave off in the GUI: columns and filters use the separate fields.")
lblab.prefs.lab_when_seen = Pref.bool("Use the addresses only if the capture shows that lab", false,
    "The balancer, backends and clients above apply only when the capture holds the balancer's "
    .. "address and a backend's, or only addresses on the balancer's /24 network; else roles "
    .. "are inferred (lbreport passes its embedded classic lab this way).")
lblab.prefs.two_pass = Pref.bool("Two passes (lbreport)", false,
    "tshark -2: the first pass only records, labels come on the second (the first pass's "
    .. "output is discarded). Leave off in the GUI and for single-pass or live captures.")
lblab.prefs.lang = Pref.string("Language (en, es)", "en",
    "Language of the Requests window (Tools > LB-Lab > Requests) and of tshark -z lblab,requests.")
lblab.prefs.markers = Pref.string("Response markers", "",
    "Semicolon-separated ROLE=text pairs: a response containing text was served by ROLE, "
    .. "e.g. M1=Soy la máquina 1;M2=Soy la máquina 2. 'Soy la máquina N' is always recognised.")

------------------------------------------------------------------------------
-- Extractors (file scope: Field.new is only allowed at load time). One table,
-- not one local each: Lua allows 200 locals in a chunk.
------------------------------------------------------------------------------
local F = {}
F.tcp_stream = Field.new("tcp.stream")
F.tcp_flags = Field.new("tcp.flags")
F.tcp_len = Field.new("tcp.len")
F.tcp_analysis = Field.new("tcp.analysis.flags")
F.retrans = Field.new("tcp.analysis.retransmission")
F.fast_retrans = Field.new("tcp.analysis.fast_retransmission")
F.dup_ack = Field.new("tcp.analysis.duplicate_ack")
F.out_of_order = Field.new("tcp.analysis.out_of_order")
F.zero_window = Field.new("tcp.analysis.zero_window")
F.keep_alive = Field.new("tcp.analysis.keep_alive")
F.lost_segment = Field.new("tcp.analysis.lost_segment")
F.http_method = Field.new("http.request.method")
F.http_uri = Field.new("http.request.uri")
F.http_code = Field.new("http.response.code")
F.http_request_in = Field.new("http.request_in")
F.http_xff = Field.new("http.x_forwarded_for")
F.h2_method = Field.new("http2.headers.method")
F.h2_path = Field.new("http2.headers.path")
F.h2_status = Field.new("http2.headers.status")
F.h2_streamid = Field.new("http2.streamid")
F.h2_data = Field.new("http2.data.data")
F.tls_content_type = Field.new("tls.record.content_type")
F.tls_opaque_type = Field.new("tls.record.opaque_type")
F.tls_handshake_type = Field.new("tls.handshake.type")
F.http_proto = Field.new("http")
F.http2_proto = Field.new("http2")
F.http_file_data = Field.new("http.file_data")
F.arp_opcode = Field.new("arp.opcode")
F.arp_src = Field.new("arp.src.proto_ipv4")
F.arp_dst = Field.new("arp.dst.proto_ipv4")
F.arp_dst_hw = Field.new("arp.dst.hw_mac")
F.icmpv6_type = Field.new("icmpv6.type")
F.icmp_type = Field.new("icmp.type")
F.udp_srcport = Field.new("udp.srcport")
F.udp_dstport = Field.new("udp.dstport")
F.nd_ns_target = Field.new("icmpv6.nd.ns.target_address")
F.nd_na_target = Field.new("icmpv6.nd.na.target_address")
F.eth_src = Field.new("eth.src")
F.eth_dst_group = Field.new("eth.dst.ig")
F.ip_ttl = Field.new("ip.ttl")
F.ipv6_hlim = Field.new("ipv6.hlim")
F.frame_time = Field.new("frame.time_epoch")

------------------------------------------------------------------------------
-- Small helpers (no bit operators: they differ between Lua 5.2 and 5.4)
------------------------------------------------------------------------------
local floor = math.floor
local tostring, tonumber, pairs, ipairs = tostring, tonumber, pairs, ipairs
local sfind, sformat, smatch, sgsub, slower = string.find, string.format, string.match, string.gsub, string.lower
local tinsert, tsort, tconcat = table.insert, table.sort, table.concat

-- TreeItem methods looked up once: `t:add(...)` looks the method up on every call.
local tree_add = TreeItem.add
local tree_add_expert = TreeItem.add_proto_expert_info

-- Arithmetic only: math.floor is a C call, and this runs several times a packet.
local function has_bit(value, bit)
    return value % (bit + bit) >= bit
end

local TCP = { FIN = 1, SYN = 2, RST = 4, ACK = 16 }

-- TCP analysis findings, stored per frame as a sum of these bits.
-- LOST: the segment before this one was never captured (lost, or the capture missed it).
local FL = { RETRANS = 1, DUP_ACK = 2, OOO = 4, ZERO_WIN = 8, KEEPALIVE = 16, LOST = 32 }
local FLAG_NAMES = {
    { FL.RETRANS, "retrans" }, { FL.DUP_ACK, "dup-ack" }, { FL.OOO, "out-of-order" },
    { FL.ZERO_WIN, "zero-window" }, { FL.KEEPALIVE, "keep-alive" }, { FL.LOST, "lost-segment" },
}

-- Steps, by number (frames store them packed).
local S = {}
-- Generic TCP steps, relative to the connection's initiator (A) and responder (B).
S.SYN, S.SYNACK, S.ACK, S.REQUEST, S.DATA, S.RESPONSE = 1, 2, 3, 4, 5, 6
S.ACK_RESP, S.FIN_A, S.FIN_B, S.LAST_ACK, S.RST, S.ACK_REQ = 7, 8, 9, 10, 11, 12
S.ACK_FIN = 13 -- one side's pure ACK of the other's FIN, before its own FIN
-- TLS on an HTTPS port, as far as the records show without the key log.
S.TLS_CH, S.TLS_SH, S.TLS_FIN, S.TLS_CLOSE = 14, 15, 16, 17
S.INTERIM = 18 -- a 1xx answer before the final one (100 Continue, 102, 103)
-- ARP / neighbour discovery steps.
S.ARP_REQ, S.ARP_REPLY, S.ND_SOL, S.ND_ADV = 21, 22, 23, 24

local FRONT_STEP = {
    [S.SYN] = "SYN", [S.SYNACK] = "SYN/ACK", [S.ACK] = "ACK", [S.REQUEST] = "request",
    [S.DATA] = "data", [S.RESPONSE] = "response", [S.ACK_RESP] = "ACK-resp",
    [S.FIN_A] = "FIN-client", [S.FIN_B] = "FIN-M3", [S.LAST_ACK] = "last-ACK", [S.RST] = "RST",
    [S.ACK_REQ] = "ACK-req", [S.ACK_FIN] = "ACK-FIN",
    [S.TLS_CH] = "TLS-ClientHello", [S.TLS_SH] = "TLS-ServerHello", [S.TLS_FIN] = "TLS-Finished",
    [S.TLS_CLOSE] = "TLS-close", [S.INTERIM] = "interim",
}
local BACK_STEP = {
    [S.SYN] = "up-SYN", [S.SYNACK] = "up-SYN/ACK", [S.ACK] = "up-ACK", [S.REQUEST] = "up-request",
    [S.DATA] = "up-data", [S.RESPONSE] = "up-response", [S.ACK_RESP] = "up-ACK-resp",
    [S.FIN_A] = "up-FIN-M3", [S.FIN_B] = "up-FIN-backend", [S.LAST_ACK] = "up-last-ACK",
    [S.RST] = "up-RST", [S.ACK_REQ] = "up-ACK-req", [S.ACK_FIN] = "up-ACK-FIN",
    [S.TLS_CH] = "up-TLS-ClientHello", [S.TLS_SH] = "up-TLS-ServerHello",
    [S.TLS_FIN] = "up-TLS-Finished", [S.TLS_CLOSE] = "up-TLS-close", [S.INTERIM] = "up-interim",
}
-- A client fetching from a backend itself: the front leg's names, but the
-- server is a backend, not M3.
local DIRECT_STEP = {}
for k, v in pairs(FRONT_STEP) do DIRECT_STEP[k] = v end
DIRECT_STEP[S.FIN_B] = "FIN-backend"
-- No balancer in the capture: a client and the web server it talks to.
local SERVER_STEP = {}
for k, v in pairs(FRONT_STEP) do SERVER_STEP[k] = v end
SERVER_STEP[S.FIN_B] = "FIN-server"
local ARP_STEP = {
    [S.ARP_REQ] = "ARP-who-has", [S.ARP_REPLY] = "ARP-reply",
    [S.ND_SOL] = "ND-solicit", [S.ND_ADV] = "ND-advert",
}

local LEG_NONE, LEG_FRONT, LEG_BACK, LEG_DIRECT, LEG_ARP = 0, 1, 2, 3, 4
local LEG_NAME = { [LEG_FRONT] = "front", [LEG_BACK] = "back", [LEG_DIRECT] = "direct", [LEG_ARP] = "arp" }
local LEG_STEPS = { [LEG_FRONT] = FRONT_STEP, [LEG_BACK] = BACK_STEP, [LEG_DIRECT] = DIRECT_STEP }

-- Roles. The balancer is M3 (the course's name); backends are M1, M2, M4, ...
-- (M<n>, n ~= 3); "broadcast" is the destination of an ARP who-has.
-- "server" is a web server in a capture that shows no balancer at all.
local ROLE_CLIENT, ROLE_BALANCER, ROLE_BROADCAST, ROLE_SERVER = "client", "M3", "broadcast", "server"
local ROLE_NAME = { ROLE_CLIENT, ROLE_BALANCER, ROLE_BROADCAST, ROLE_SERVER }
local function backend_role(n) return "M" .. n end
local function is_backend(r)
    return r ~= nil and r ~= false and r ~= ROLE_CLIENT and r ~= ROLE_BALANCER and r ~= ROLE_SERVER
        and r ~= ROLE_BROADCAST
end
-- What shows that a host balances HTTP, strongest first: the lab file names it; it
-- receives HTTP and sends HTTP on to third hosts; it asks ARP/ND for hosts it does not
-- talk HTTP with; its pages name two or more backends; X-Forwarded-For on what it
-- sends (weak: a client can write that header itself).
local BALANCER_EVIDENCE = { "lab-file", "back-leg", "arp-for-third-hosts", "marker", "x-forwarded-for" }

local FROM_B = 32 -- added to a TCP frame's stored step when the responder sent it

-- CACHE: the balancer answered from its cache (no backend served this request).
local EV = { NONE = 0, ARP = 1, MARKER = 2, BACKLEG = 3, CACHE = 4 }
local EVIDENCE_NAME = { [EV.NONE] = "none", [EV.ARP] = "arp", [EV.MARKER] = "marker",
    [EV.BACKLEG] = "back-leg", [EV.CACHE] = "cache" }

-- The vocabulary, published for tools (`tshark -G values`): value strings of
-- fields that are never added to a tree. lbreport's tests compare them with its own.
do
    local fields = {}
    for i, f in ipairs(registered) do fields[i] = f end
    local function published(name, desc, names)
        fields[#fields + 1] = ProtoField.uint8("lblab.vocab." .. name, desc, base.DEC, names)
    end
    published("front", "Front-leg steps", FRONT_STEP)
    published("back", "Back-leg steps", BACK_STEP)
    published("direct", "Direct-request steps", DIRECT_STEP)
    published("server", "Steps with no balancer (client and web server)", SERVER_STEP)
    published("balancer_evidence", "What shows a balancer, strongest first", BALANCER_EVIDENCE)
    published("arp", "ARP/ND steps", ARP_STEP)
    published("evidence", "Backend evidence levels", EVIDENCE_NAME)
    published("legs", "Legs", LEG_NAME)
    published("roles", "Roles other than backends (M<n>, n ~= 3)", ROLE_NAME)
    published("pkt", "Slots of lblab.pkt, in order", LABELS)
    lblab.fields = fields
end

local function trim(s)
    return (sgsub(s, "^%s*(.-)%s*$", "%1"))
end

local function split(s, sep_class)
    local out = {}
    for item in string.gmatch(s or "", "[^" .. sep_class .. "]+") do
        item = trim(item)
        if item ~= "" then tinsert(out, item) end
    end
    return out
end

-- A sort key that orders addresses numerically: IPv4 octets and IPv6 groups
-- zero-padded, so "M1, M2, ..." follow address order like a person expects.
local function address_key(addr)
    if sfind(addr, ":", 1, true) then
        local head, tail = smatch(addr, "^(.-)::(.*)$")
        local groups = {}
        if head then
            local left, right = split(head, ":"), split(tail, ":")
            for _, g in ipairs(left) do tinsert(groups, g) end
            for _ = 1, 8 - #left - #right do tinsert(groups, "0") end
            for _, g in ipairs(right) do tinsert(groups, g) end
        else
            groups = split(addr, ":")
        end
        for i, g in ipairs(groups) do groups[i] = sformat("%4s", slower(g)):gsub(" ", "0") end
        return "6" .. tconcat(groups, ":")
    end
    local a, b, c, d = smatch(addr, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if a then return sformat("4%03d.%03d.%03d.%03d", a, b, c, d) end
    return "9" .. addr
end

local function endpoint(addr, port)
    if sfind(addr, ":", 1, true) then return "[" .. addr .. "]:" .. port end
    return addr .. ":" .. port
end

------------------------------------------------------------------------------
-- Configuration, parsed from the preferences
------------------------------------------------------------------------------
local cfg = {}

local function parse_prefs()
    local p = lblab.prefs
    cfg = { balancer = {}, backends = {}, clients = {}, ports = {}, markers = {}, configured = false,
            compact = p.compact == true, debug = p.debug == true, two_pass = p.two_pass == true,
            lab_when_seen = p.lab_when_seen == true,
            lang = slower(trim(p.lang or "")) == "es" and "es" or "en" }
    for _, addr in ipairs(split(p.balancer, ",; ")) do
        cfg.balancer[slower(addr)] = true
        cfg.configured = true
    end
    for _, pair in ipairs(split(p.backends, ",; ")) do
        local role, addr = smatch(pair, "^([^=]+)=(.+)$")
        if role then
            cfg.backends[slower(trim(addr))] = trim(role)
            cfg.configured = true
        end
    end
    for _, addr in ipairs(split(p.clients, ",; ")) do cfg.clients[slower(addr)] = true end
    -- The lab's addresses as configured; cfg.balancer/backends/clients are the ones in use.
    cfg.lab = { balancer = cfg.balancer, backends = cfg.backends, clients = cfg.clients }
    for _, port in ipairs(split(p.ports, ",; ")) do
        local n = tonumber(port)
        if n then cfg.ports[n] = true end
    end
    -- HTTPS ports serve the farm too (legs, roles); cfg.https says which are TLS.
    cfg.https = {}
    for _, port in ipairs(split(p.https_ports, ",; ")) do
        local n = tonumber(port)
        if n then cfg.ports[n], cfg.https[n] = true, true end
    end
    for _, pair in ipairs(split(p.markers, ";")) do
        local role, text = smatch(pair, "^([^=]+)=(.+)$")
        if role then tinsert(cfg.markers, { trim(role), text }) end
    end
end

------------------------------------------------------------------------------
-- Per-capture state, in a few named tables of columns (one array per fact:
-- compact for large captures). Reset in init and prefs_changed.
------------------------------------------------------------------------------
-- Frames, indexed by frame number.
local FRAME_COLUMNS = {
    "pk",    -- one packed number: connection, step, HTTP message (see pack_frame)
    "flags", -- TCP analysis findings (sparse: a sum of FL_* bits)
    "arp",   -- the ARP/ND record of the frame (sparse)
    "req",   -- cache: the request the frame belongs to, once resolved
    "interim", -- the status of a 1xx answer (sparse)
    -- Only for -z lblab,labels (labels written once the capture is read, no second pass):
    -- what labelling reads from the packet itself, noted in the only pass.
    "secs", "nsecs", -- its time, as PDML writes it (pinfo.abs_ts is a double: it rounds)
    "src", "dst",    -- a frame in no connection and no ARP/ND: its innermost IP addresses
    "other",         -- such a frame's kind (udp, dns, icmp, ...)
    "mac", "group",  -- an ARP/ND frame: its source MAC, and whether it went to a group
    "error",         -- the plugin's Lua error on the frame
}
-- Connections, indexed by tcp.stream + 1. A opened the connection, B answered.
local CONN_COLUMNS = {
    "a", "b", "aport", "bport", -- addresses and ports of A and B
    "t0", "first_frame",         -- when it was first seen
    "synack", "hs_done", "fin_a", "fin_b", "last_ack", -- frames of its handshake and teardown
    "last_dir_resp",             -- the last data went from B to A (a response)
    "first_h", "last_h", "resp_h", "nreq", -- its HTTP messages: first, last, next to answer, count
    "fail_front",                -- a failed upstream attempt: the front request it served
    "pred",                      -- single pass: the request index predicted for its handshake
    "gen", "ra", "rb", "leg",    -- cache: roles and leg, valid while gen == state.roles_gen
    "client",                    -- A as "address:port"
    "one_host",                  -- both ends on one address: B is "address:port"
    "streams",                   -- streams[c][sid]: HTTP/2, the request of each stream
    "decrypted",                 -- an HTTPS connection whose HTTP the key log let tshark read
    "upgraded",                  -- after a 101 answer: the request whose protocol it now carries
    "pend",                      -- client data with no request yet (the first segments of a
                                 -- request HTTP reassembles later), until it arrives
}
-- HTTP messages (requests with their response; front and back leg), in frame order.
local MSG_COLUMNS = {
    "conn", "frame", "time",      -- where and when the request was seen
    "method", "uri", "xff",       -- what it asked; the forwarded client (X-Forwarded-For)
    "resp_frame", "resp_time", "status", "marker", -- its response; the backend a page names
    "next",                       -- the next message on the same connection
    "fidx",                       -- request index (front), -1 back leg, 0 none
    "link", "backlink",           -- front <-> the back-leg request that served it
    "arp_backend", "fail",        -- a backend M3 asked ARP for while it waited; failed upstream
    "label_backend", "label_evidence", -- cache: its backend and evidence, once resolved
    "own_xff", "xff_all",         -- what the sender itself wrote in X-Forwarded-For: the values
                                  -- before the last hop's, and the whole header
    "didx",                       -- direct requests (client -> backend): their own numbering
    "version",                    -- HTTP version of a request
    "encrypted",                  -- an exchange seen only as TLS records (no key log)
    "merged",                     -- an encrypted client record that is no request (HTTP/2
                                  -- setup): the request its frames belong to instead
    "cache_hit",                  -- the response says a cache answered it (Age, X-Cache...)
    "unseen",                     -- a back-leg request that is a request of its own: an
                                  -- exchange on that encrypted front request's connection
                                  -- which the TLS records did not show apart
}
-- ARP and neighbour-discovery records.
local NBR_COLUMNS = {
    "time", "asker", "subject", "kind", -- who asked for whom, when; an ARP/ND step
    "front",                            -- the request that was waiting for the answer
    "refresh",                          -- a unicast who-has / NS: the asker re-checks a known
                                        -- neighbour (and its answer)
}
-- Hosts (small): first frame, MAC, host pairs seen, marker tallies per server.
local HOST_COLUMNS = { "first_frame", "mac", "pairs", "markers", "ttl" }

local frames, conn, msg, nbr, hosts
-- Derived state: roles, request numbering, what resolve() found.
local state = { roles_gen = 0 }

local function columns(names)
    local t = {}
    for _, name in ipairs(names) do t[name] = {} end
    return t
end

local function reset_state()
    frames, conn, msg, nbr = columns(FRAME_COLUMNS), columns(CONN_COLUMNS), columns(MSG_COLUMNS),
        columns(NBR_COLUMNS)
    hosts = columns(HOST_COLUMNS)
    conn.n, msg.n, nbr.n, msg.ndirect = 0, 0, 0, 0
    nbr.refresh_pair = {} -- "asker|subject" of a refresh: its answer is part of it
    -- roles_gen only grows: a connection's cached roles never match a newer set by accident.
    -- labels_wanted (-z lblab,labels) is asked before the capture opens: it outlives a reset.
    state = { roles_gen = state.roles_gen + 1, labels_wanted = state.labels_wanted,
              role_of = {}, mac_role = {},
              roles_dirty = true, resolved_gen = -1, record_gen = 0, last_frame = 0,
              drawing = false,
              front_count = 0, pending_front_conns = 0, last_open_front = 0, has_front = false,
              unlinked_from = 1,
              frame_defs = {}, left_out = {}, left_out_addrs = {}, debug_log = {},
              http_seen = 0, http_copies = 0, balancer_evidence = {}, http_ports = {} }
end

-- Role inference, linking at resolve time, and the debug log: functions in named
-- tables (the main chunk keeps few locals).
local infer, link, debuglog = {}, {}, {}

-- The debug preference's log. Wireshark 4.0's Lua has no log function and print
-- would corrupt tools reading tshark's output, so the log is a field: lblab.debug
-- on the first frame shows what was inferred; on every frame, its own facts.
function debuglog.note(what, t)
    if not cfg.debug then return end
    local parts = {}
    if type(t) == "table" then
        for k, v in pairs(t) do tinsert(parts, tostring(k) .. "=" .. tostring(v)) end
        tsort(parts)
    else
        parts[1] = tostring(t)
    end
    state.debug_log[what] = what .. ": " .. tconcat(parts, " ") -- the latest of each kind
end

reset_state()
parse_prefs()

------------------------------------------------------------------------------
-- Role inference
------------------------------------------------------------------------------
local function note_host(addr, frame, mac)
    if not hosts.first_frame[addr] then
        hosts.first_frame[addr] = frame
        state.roles_dirty = true
    end
    if mac and not hosts.mac[addr] then hosts.mac[addr] = mac end
end

local function note_pair(a, b, is_http, xff)
    local key = a .. "|" .. b
    local p = hosts.pairs[key]
    if not p then
        p = { a = a, b = b, http = false, xff = false, conns = 0 }
        hosts.pairs[key] = p
        state.roles_dirty = true
    end
    if is_http and not p.http then p.http = true; state.roles_dirty = true end
    if xff and not p.xff then p.xff = true; state.roles_dirty = true end
    return p
end


-- Which backend role the responses from an address name most often.
local function marker_role_for(addr)
    local tally = hosts.markers[addr]
    if not tally then return nil end
    local best, best_n = nil, 0
    for role, n in pairs(tally) do
        if n > best_n or (n == best_n and best and role < best) then best, best_n = role, n end
    end
    return best
end

-- Whether x asks ARP/ND for a host it does not receive HTTP from.
function infer.asks_for_others(x, sources)
    for i = 1, nbr.n do
        if nbr.asker[i] == x and nbr.subject[i] and not sources[nbr.subject[i]]
            and (nbr.kind[i] == S.ARP_REQ or nbr.kind[i] == S.ND_SOL) then
            return true
        end
    end
    return false
end

function infer.http_conns_into(x)
    local n = 0
    for _, p in pairs(hosts.pairs) do
        if p.http and p.b == x then n = n + p.conns end
    end
    return n
end

-- A balancer with several addresses (two NICs, IPv4 and IPv6): the address a
-- client's request arrives at, and the address that forwards requests carrying
-- that client in X-Forwarded-For to hosts that do not send HTTP themselves.
-- Returns the set of M3's addresses, or {} when the traffic shows no such pair.
function infer.balancer_by_aliases(inbound)
    local forwarded_by = {} -- sender -> { client = true } from stamped requests
    for h = 1, msg.n do
        local xff = msg.xff[h]
        if xff and not msg.own_xff[h] then
            local sender = conn.a[msg.conn[h]]
            forwarded_by[sender] = forwarded_by[sender] or {}
            forwarded_by[sender][xff] = true
        end
    end
    local m3 = {}
    for sender, clients in pairs(forwarded_by) do
        if not inbound[sender] then
            for z, sources in pairs(inbound) do
                if z ~= sender then
                    for client in pairs(clients) do
                        if sources[client] and client ~= sender then
                            m3[z], m3[sender] = true, true
                            break
                        end
                    end
                end
            end
        end
    end
    return m3
end

-- The HTTP traffic as a graph: who sends HTTP to whom, and which servers receive
-- forwarded requests (X-Forwarded-For).
function infer.http_graph()
    local inbound, outbound, xff_into = {}, {}, {}
    for _, p in pairs(hosts.pairs) do
        if p.http then
            inbound[p.b] = inbound[p.b] or {}
            inbound[p.b][p.a] = true
            outbound[p.a] = outbound[p.a] or {}
            outbound[p.a][p.b] = true
            if p.xff then xff_into[p.b] = true end
        end
    end
    return inbound, outbound, xff_into
end

local function count(t) local n = 0; for _ in pairs(t or {}) do n = n + 1 end; return n end

-- A set's keys, sorted and joined with commas.
local function sorted_keys(set)
    local keys = {}
    for k in pairs(set) do tinsert(keys, k) end
    tsort(keys)
    return tconcat(keys, ",")
end

-- Whether x beats the best so far: higher score, then lower address (stable).
function infer.better(x, best, score, best_score)
    return best == nil or score > best_score or (score == best_score and address_key(x) < address_key(best))
end

-- 1. The balancer: configured, several addresses joined by X-Forwarded-For, or
--    the host that receives HTTP from others and itself sends HTTP to third hosts.
function infer.balancer(inbound, outbound, xff_into)
    local best, best_score = nil, -1
    local candidates = {}
    for x, sources in pairs(inbound) do
        for y in pairs(outbound[x] or {}) do
            if not sources[y] then
                local score = count(sources)
                candidates[x] = true
                if infer.better(x, best, score, best_score) then best, best_score = x, score end
                break
            end
        end
    end
    local m3 = {}
    for addr in pairs(cfg.balancer) do m3[addr] = true end
    if next(m3) == nil then m3 = infer.balancer_by_aliases(inbound) end
    if next(m3) == nil then m3 = infer.balancer_on_one_host(inbound, xff_into) end
    if next(m3) == nil and best then m3[best] = true end
    if next(m3) == nil then m3 = infer.balancer_of_one_server(inbound, xff_into) end
    infer.with_dual_stack(m3)
    local evidence = infer.evidence_of(m3, inbound, outbound, xff_into)
    if #evidence == 0 then m3 = {} end -- never M3 without evidence: no balancer here
    infer.note_left_out(candidates, m3, outbound)
    return m3, evidence
end

-- A server identity "address:port" (one host's farm): its address, else nil.
function infer.host_of(x)
    return smatch(x, "^%[(.+)%]:%d+$") or smatch(x, "^([%d.]+):%d+$")
end

-- The other servers on the same address as x (one host's farm), as a list.
function infer.same_host_servers(x, inbound)
    local addr, others = infer.host_of(x), {}
    if addr == nil then return others end
    for y in pairs(inbound) do
        if y ~= x and infer.host_of(y) == addr then tinsert(others, y) end
    end
    return others
end

-- One host's farm (nginx and its backends on one machine's ports): the balancer is
-- the port whose pages name two or more backends, or the only one that receives
-- requests without X-Forwarded-For while the host's other ports receive them stamped.
function infer.balancer_on_one_host(inbound, xff_into)
    for x in pairs(inbound) do
        local others = infer.same_host_servers(x, inbound)
        if #others > 0 and not xff_into[x] then
            local stamped = 0
            for _, y in ipairs(others) do
                if xff_into[y] then stamped = stamped + 1 end
            end
            if count(hosts.markers[x]) >= 2 or stamped == #others then return { [x] = true } end
        end
    end
    return {}
end

-- What shows that the hosts in m3 balance HTTP (names of BALANCER_EVIDENCE, in order).
function infer.evidence_of(m3, inbound, outbound, xff_into)
    local found, receives = {}, false
    for x in pairs(m3) do receives = receives or inbound[x] ~= nil end
    for x in pairs(m3) do
        if cfg.balancer[x] then found["lab-file"] = true end
        for y in pairs(outbound[x] or {}) do
            if receives and not (inbound[x] or {})[y] and not m3[y] then found["back-leg"] = true end
            if xff_into[y] then found["x-forwarded-for"] = true end
        end
        if infer.asks_for_others(x, inbound[x] or {}) then found["arp-for-third-hosts"] = true end
        for y in pairs(outbound[x] or {}) do
            if not m3[y] and marker_role_for(y) then found.marker = true end -- a backend's page
        end
        if count(hosts.markers[x]) >= 2 then found.marker = true end
        -- One host's farm: both legs are on its wire, the back leg to its other ports.
        for _, y in ipairs(infer.same_host_servers(x, inbound)) do
            found["back-leg"] = true
            if xff_into[y] then found["x-forwarded-for"] = true end
        end
    end
    local evidence = {}
    for _, name in ipairs(BALANCER_EVIDENCE) do
        if found[name] then tinsert(evidence, name) end
    end
    return evidence
end

-- Other hosts that also receive HTTP and forward it to third hosts: a second farm
-- in the same capture (two captures merged). One balancer is explained; the others
-- are named with how many requests they received, so that nothing is left out silently.
function infer.note_left_out(candidates, m3, outbound)
    local left = {}
    for x in pairs(candidates) do
        local serves_m3 = false
        for a in pairs(m3) do
            if (outbound[a] or {})[x] then serves_m3 = true end -- a backend of M3 (a chain)
        end
        if not m3[x] and not serves_m3 then tinsert(left, x) end
    end
    tsort(left)
    state.left_out_addrs = left
end

-- "address=requests" for each balancer left out, counted once the whole capture is read.
function infer.count_left_out()
    local n = {}
    for h = 1, msg.n do
        local b = conn.b[msg.conn[h]]
        n[b] = (n[b] or 0) + 1
    end
    state.left_out = {}
    for _, x in ipairs(state.left_out_addrs) do tinsert(state.left_out, x .. "=" .. (n[x] or 0)) end
end

-- 2. One visible server. If its requests carry X-Forwarded-For it is a backend
--    seen from its own wire, and whoever talks to it is M3; otherwise it is the
--    balancer seen from a client. The server that asks ARP/ND for hosts it does
--    not talk HTTP with (the balancer looking for its backends) wins, then the
--    one with most connections: a direct fetch from a backend must not make it M3.
function infer.balancer_of_one_server(inbound, xff_into)
    local m3 = {}
    local server, server_score, asks_others = nil, -1, false
    for x, sources in pairs(inbound) do
        local asks = infer.asks_for_others(x, sources)
        local score = (asks and 1e9 or 0) + infer.http_conns_into(x)
        if infer.better(x, server, score, server_score) then
            server, server_score, asks_others = x, score, asks
        end
    end
    -- Seen from the server's own wire: what it receives was forwarded (X-Forwarded-For),
    -- or its pages name it as one backend (a layer-4 balancer stamps nothing). Not when
    -- the capture sits at the senders (their packets keep their first TTL, the server's
    -- do not): a client wrote that header itself.
    local backend_view = server and not asks_others and not cfg.clients[server]
        and (xff_into[server] or infer.names_one_backend(server))
        and not infer.captured_at_senders(server, inbound[server])
    if backend_view then
        for a in pairs(inbound[server]) do m3[a] = true end
    elseif server then
        m3[server] = true
    end
    return m3
end

-- A server whose pages all name the same backend (and no other): that backend.
function infer.names_one_backend(x)
    return count(hosts.markers[x]) == 1
end

-- The first TTL / hop limit a host sends with: 64, 128 or 255 on the wire it was
-- captured on; one less per router crossed.
local INITIAL_TTL = { [64] = true, [128] = true, [255] = true, [32] = true }
function infer.captured_at_senders(server, senders)
    local ttl = hosts.ttl[server]
    if ttl == nil or INITIAL_TTL[ttl] then return false end
    for a in pairs(senders or {}) do
        if not INITIAL_TTL[hosts.ttl[a] or 0] then return false end
    end
    return true
end

-- 3. Backends: configured, HTTP targets of M3, servers whose pages name a
--    backend, and what M3 asks ARP/ND for; named by marker, then address order.
function infer.backends(roles, m3, inbound, outbound)
    local found = {}
    for addr, r in pairs(cfg.backends) do roles[addr] = r end
    for x in pairs(m3) do
        for _, y in ipairs(infer.same_host_servers(x, inbound)) do
            if not roles[y] then found[y] = true end
        end
    end
    for addr in pairs(m3) do
        for y in pairs(outbound[addr] or {}) do
            -- (Its own address:port is no backend: one host's farm names its backends
            -- below, and a damaged frame from an address to itself names nobody.)
            if not roles[y] and not cfg.clients[y] and not (inbound[addr] or {})[y]
                and infer.host_of(y) ~= addr then
                found[y] = true
            end
        end
    end
    -- A server that is not M3 and whose pages name a backend (a client fetched it
    -- directly) is that backend; not another farm's balancer or backends.
    local other_farm = {}
    for _, b in ipairs(state.left_out_addrs) do
        other_farm[b] = true
        for y in pairs(outbound[b] or {}) do other_farm[y] = true end
    end
    for x in pairs(inbound) do
        if not m3[x] and not roles[x] and not cfg.clients[x] and not other_farm[x]
            and marker_role_for(x) then
            found[x] = true
        end
    end
    for i = 1, nbr.n do
        local asker, subject = nbr.asker[i], nbr.subject[i]
        if m3[asker] and subject and not roles[subject] and not cfg.clients[subject]
            and not (inbound[asker] or {})[subject] and nbr.kind[i] ~= S.ARP_REPLY and nbr.kind[i] ~= S.ND_ADV then
            found[subject] = true
        end
    end
    infer.name_backends(roles, found)
end

function infer.name_backends(roles, found)
    local taken, unnamed = {}, {}
    for _, r in pairs(cfg.backends) do taken[r] = true end
    for addr in pairs(found) do
        local r = marker_role_for(addr)
        if r and not taken[r] and r ~= ROLE_BALANCER then
            roles[addr] = r
            taken[r] = true
        else
            tinsert(unnamed, addr)
        end
    end
    tsort(unnamed, function(x, y) return address_key(x) < address_key(y) end)
    local n = 0
    for _, addr in ipairs(unnamed) do
        repeat n = n + 1 until not taken[backend_role(n)] and backend_role(n) ~= ROLE_BALANCER
        roles[addr] = backend_role(n)
        taken[backend_role(n)] = true
    end
end

-- 4. Clients: configured ones, every other host that talks HTTP to M3 and, in a
--    backend's view, the address the balancer wrote in X-Forwarded-For on what it
--    sent (never one a client wrote to M3).
function infer.clients(roles, m3, inbound)
    for addr in pairs(cfg.clients) do roles[addr] = roles[addr] or ROLE_CLIENT end
    for addr in pairs(m3) do
        for a in pairs(inbound[addr] or {}) do
            if not roles[a] then roles[a] = ROLE_CLIENT end
        end
    end
    -- Only where no client talks to M3 in the capture (a backend's view): where the
    -- front leg is seen, the clients are its hosts, and a value in a header (which a
    -- damaged or forged frame can hold) names no one who is not in a packet header.
    for addr in pairs(m3) do
        if inbound[addr] then return end
    end
    for h = 1, msg.n do
        local xff = msg.xff[h]
        if xff and not roles[xff] and m3[conn.a[msg.conn[h]]] then roles[xff] = ROLE_CLIENT end
    end
end

-- A MAC names a role only when it is one host's: at most one IPv4 and one IPv6
-- address besides link-local ones (a dual-stack host). Behind a router every remote
-- host has the router's MAC: those hosts share nothing.
function infer.roles_by_mac(roles)
    local v4, v6 = {}, {}
    for addr, mac in pairs(hosts.mac) do
        if not sfind(addr, ":", 1, true) then
            v4[mac] = (v4[mac] or 0) + 1
        elseif not sfind(addr, "^fe80:") then
            v6[mac] = (v6[mac] or 0) + 1
        end
    end
    local by_mac = {}
    for addr, r in pairs(roles) do
        local mac = hosts.mac[addr]
        if mac and (v4[mac] or 0) <= 1 and (v6[mac] or 0) <= 1 then by_mac[mac] = r end
    end
    return by_mac
end

-- The balancer's other family: an address with the same MAC as one of its addresses,
-- where that MAC is one host's (one IPv4 and one IPv6 address at most): M3 talks IPv6 to
-- its clients and asks ARP for its backends from its IPv4 address.
function infer.with_dual_stack(m3)
    local by_mac = infer.roles_by_mac(m3)
    for addr, mac in pairs(hosts.mac) do
        if by_mac[mac] and not m3[addr] and not sfind(addr, "^fe80:") then m3[addr] = true end
    end
end

-- No balancer: every other host that receives HTTP is a web server, and who sends
-- it HTTP is a client.
function infer.servers(roles, inbound)
    for x, sources in pairs(inbound) do
        if not roles[x] and not cfg.clients[x] then roles[x] = ROLE_SERVER end
        for a in pairs(sources) do
            if not roles[a] then roles[a] = ROLE_CLIENT end
        end
    end
end

-- Whether the configured addresses describe this capture (lblab.lab_when_seen): the
-- balancer's address is in it, and a backend's address too or only addresses on the
-- balancer's /24 network.
function infer.lab_seen()
    if not cfg.lab_when_seen then return true end
    local balancer_seen, backend_seen, prefix = false, false, nil
    for addr in pairs(cfg.lab.balancer) do
        if hosts.first_frame[addr] then balancer_seen = true end
        prefix = prefix or smatch(addr, "^(%d+%.%d+%.%d+%.)%d+$")
    end
    if not balancer_seen then return false end
    for addr in pairs(cfg.lab.backends) do
        if hosts.first_frame[addr] then backend_seen = true end
    end
    if backend_seen then return true end
    for addr in pairs(hosts.first_frame) do
        if prefix == nil or not smatch(addr, "^%d+%.%d+%.%d+%.%d+$") or addr:sub(1, #prefix) ~= prefix then
            return false
        end
    end
    return true
end

local function infer_roles()
    state.lab_applied = infer.lab_seen()
    local lab = state.lab_applied and cfg.lab or { balancer = {}, backends = {}, clients = {} }
    cfg.balancer, cfg.backends, cfg.clients = lab.balancer, lab.backends, lab.clients
    local inbound, outbound, xff_into = infer.http_graph()
    local roles = {}
    local m3, evidence = infer.balancer(inbound, outbound, xff_into)
    state.balancer_evidence = evidence
    for addr in pairs(m3) do roles[addr] = ROLE_BALANCER end
    infer.backends(roles, m3, inbound, outbound)
    infer.clients(roles, m3, inbound)
    if next(m3) == nil then infer.servers(roles, inbound) end

    state.role_of = roles
    state.roles_gen = state.roles_gen + 1
    state.mac_role = infer.roles_by_mac(roles)
    state.roles_dirty = false
    debuglog.note("roles", roles)
end

-- The farm's ports: the configured ones, and every port HTTP requests were sent to
-- (tshark dissected them as HTTP: 8080, 2375... need no configuration).
local function is_farm_port(port)
    return cfg.ports[port] == true or state.http_ports[port] == true
end

local function role(addr)
    if addr == nil then return nil end
    local r = state.role_of[addr]
    if r == nil and hosts.mac[addr] then r = state.mac_role[hosts.mac[addr]] end
    return r
end

-- Roles and leg of a connection, cached until the roles change (they are
-- read for every frame: no lookups or string building per frame).
local function conn_roles(c)
    if conn.gen[c] ~= state.roles_gen then
        local ra, rb = role(conn.a[c]), role(conn.b[c])
        -- On one host's farm the balancer's upstream connections leave from the host's
        -- address, as a client's would: to a backend's port, that end is the balancer.
        if conn.one_host[c] and is_backend(rb) then ra = ROLE_BALANCER end
        local leg = LEG_NONE
        local backend_b = is_backend(rb)
        -- Only the farm's web service makes a leg: SSH to M3, or anything else
        -- between the same hosts, keeps its roles and no more.
        if not is_farm_port(conn.bport[c]) then
            leg = LEG_NONE
        elseif (rb == ROLE_BALANCER and ra ~= ROLE_BALANCER) or (rb == ROLE_SERVER and ra ~= nil) then
            leg = LEG_FRONT
        elseif ra == ROLE_BALANCER and backend_b then
            leg = LEG_BACK
        elseif backend_b and ra ~= nil then
            leg = LEG_DIRECT
        end
        conn.ra[c], conn.rb[c], conn.leg[c], conn.gen[c] = ra or false, rb or false, leg, state.roles_gen
    end
    return conn.leg[c], conn.ra[c], conn.rb[c]
end

local function conn_leg(c)
    return (conn_roles(c))
end

local function ensure_roles()
    if state.roles_dirty then infer_roles() end
end

------------------------------------------------------------------------------
-- Recording (first visit of a frame)
------------------------------------------------------------------------------
local function first_value(field)
    local fi = field()
    if fi == nil then return nil end
    return fi.value
end

-- A field's innermost occurrence: in a tunnel (VXLAN, GRE/ERSPAN, IP in IP) the
-- outer headers come first and the hosts that talk HTTP are inside.
local function innermost(field)
    local fi, second = field()
    if second == nil then return fi end
    local all = { field() }
    return all[#all]
end

-- Addresses as text. tostring() of a FieldInfo gives the numeric form even
-- when the GUI resolves names (tostring of its .value would not).
local function field_text(field)
    local fi = innermost(field)
    if fi == nil then return nil end
    return slower(tostring(fi))
end

-- The innermost IP header's address (VXLAN, GRE/ERSPAN, IP in IP: each IP layer
-- sets pinfo's network addresses, the innermost last), as text, or nil without IP.
-- pinfo, not ip.src/ipv6.src extractors: an extractor makes tshark build its field
-- on every packet, and these are read only when a connection or neighbour is new.
local function ip_text(addr)
    local text = slower(tostring(addr))
    if smatch(text, "^%d+%.%d+%.%d+%.%d+$") then return text end
    -- IPv6: "::" or eight groups (a MAC address has six, and no "::").
    if smatch(text, "^[%x:.]+$") and (sfind(text, "::", 1, true) or select(2, sgsub(text, ":", ":")) == 7) then
        return text
    end
    return nil
end

local function net_src(pinfo)
    return ip_text(pinfo.net_src)
end

local function net_dst(pinfo)
    return ip_text(pinfo.net_dst)
end

local function tcp_findings()
    if F.tcp_analysis() == nil then return 0 end
    local bits = 0
    if F.retrans() or F.fast_retrans() then bits = bits + FL.RETRANS end
    if F.dup_ack() then bits = bits + FL.DUP_ACK end
    if F.out_of_order() then bits = bits + FL.OOO end
    if F.zero_window() then bits = bits + FL.ZERO_WIN end
    if F.keep_alive() then bits = bits + FL.KEEPALIVE end
    if F.lost_segment() then bits = bits + FL.LOST end
    return bits
end

-- Text from packets goes into the tree (and so into PDML, columns, reports) only as
-- valid UTF-8 without control characters: each control byte and each byte of an
-- invalid UTF-8 sequence becomes a visible \xNN (a client writes its own bytes).
local safe_text
do
local sbyte, schar, ssub = string.byte, string.char, string.sub

local function utf8_len_at(s, i)
    local c = sbyte(s, i)
    local n, min
    if c >= 0xC2 and c <= 0xDF then n, min = 1, 0x80
    elseif c >= 0xE0 and c <= 0xEF then n, min = 2, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then n, min = 3, 0x10000
    else return nil end
    local cp = c % (2 ^ (6 - n))
    for k = 1, n do
        local b = sbyte(s, i + k)
        if b == nil or b < 0x80 or b > 0xBF then return nil end
        cp = cp * 64 + (b - 0x80)
    end
    if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return nil end
    return n + 1
end

local function hex_byte(c) return sformat("\\x%02x", sbyte(c)) end

function safe_text(s)
    s = sgsub(s, "[\0-\31\127]", hex_byte)
    if not sfind(s, "[\128-\255]") then return s end
    local out, i, n = {}, 1, #s
    while i <= n do
        local c = sbyte(s, i)
        if c < 0x80 then
            tinsert(out, schar(c)); i = i + 1
        else
            local len = utf8_len_at(s, i)
            if len then
                tinsert(out, ssub(s, i, i + len - 1)); i = i + len
            else
                tinsert(out, sformat("\\x%02x", c)); i = i + 1
            end
        end
    end
    return tconcat(out)
end
end

-- A message's head (up to its blank line), lower-cased for header names.
local function http_head(raw)
    local head_end = sfind(raw, "\r\n\r\n", 1, true)
    return slower(head_end and string.sub(raw, 1, head_end) or raw)
end

-- The captures of `pattern` (which starts with the plain text `plain`) at its first
-- match in s. Lua tries an unanchored pattern at every byte (tens of instructions
-- each); a plain search (memchr) finds the candidates first.
local function first_match(s, plain, pattern)
    local at = sfind(s, plain, 1, true)
    while at do
        local a, b = smatch(s, pattern, at)
        if a then return a, b end
        at = sfind(s, plain, at + 1, true)
    end
    return nil
end

-- An address as text, or nil when it does not parse as IPv4 or IPv6.
local function parse_address(v)
    if v == nil then return nil end
    local a, b, c, d = smatch(v, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if a then
        -- Each part 0-255 written plainly: "10.000.000.03" is no address (a leading
        -- zero reads as octal to some parsers, decimal to others).
        for _, part in ipairs({ a, b, c, d }) do
            if #part > 3 or tonumber(part) > 255 or smatch(part, "^0%d") then
                return nil
            end
        end
        return sformat("%d.%d.%d.%d", a, b, c, d)
    end
    v = smatch(v, "^%[?([%x:%.]+)%]?$")
    if v and #v >= 2 and #v <= 45 and sfind(v, ":", 1, true) and not sfind(v, ":::", 1, true) then
        return slower(v)
    end
    return nil
end

-- The address a request was forwarded for, as the last hop wrote it: the last
-- value of the last X-Forwarded-For header (nginx appends to a client's own
-- value, haproxy adds a header after it), else the last X-Real-IP header. Only a
-- value that parses as an address counts. Also returns what the client wrote
-- itself (earlier values or headers), escaped, when it wrote any.
local function forwarded_client(raw)
    local xffs = { F.http_xff() }
    local values = {}
    for _, fi in ipairs(xffs) do
        for item in string.gmatch(tostring(fi.value), "[^,]+") do tinsert(values, trim(item)) end
    end
    if #values > 0 then
        local client = parse_address(values[#values])
        local own = nil
        if #values > 1 then own = safe_text(tconcat(values, ", ", 1, #values - 1)) end
        return client, own, safe_text(tconcat(values, ", "))
    end
    local head, last = http_head(raw), nil
    local at = sfind(head, "\nx-real-ip:", 1, true)
    while at do
        last = smatch(head, "^\nx%-real%-ip:[ \t]*([^\r\n]*)", at)
        at = sfind(head, "\nx-real-ip:", at + 1, true)
    end
    if last then return parse_address(trim(last)), nil end
    return nil, nil
end

-- The request's URI as sent, and its HTTP version, from the request line in the
-- frame's bytes: Wireshark's URI field stops at a NUL byte, the bytes do not (what
-- follows is kept, and the NUL shows as \x00). The version is read here too: one
-- more extractor would cost every HTTP frame of a capture.
local function request_line(raw, method, uri)
    local s, e = sfind(raw, method .. " " .. uri, 1, true)
    local version = nil
    if s then
        local rest = smatch(raw, "^[^ \r\n]+", e + 1)
        if rest then uri = uri .. rest; e = e + #rest end
        version = smatch(raw, "^ HTTP/(%d%.%d)", e + 1)
    end
    return safe_text(uri), version
end

local function marker_in(text)
    for _, m in ipairs(cfg.markers) do
        if sfind(text, m[2], 1, true) then return m[1] end
    end
    -- The classic lab's page ("Soy la máquina N") names its backend out of the box.
    -- A plain search first: the pattern alone would be tried at every byte of every page.
    local n = first_match(text, "Soy la m", "^Soy la m.-quina (%d+)")
    if n then return backend_role(n) end
    return nil
end

-- A field's bytes: http.file_data is a string field in 4.0 but bytes since 4.2,
-- whose tostring() is hex; a ByteArray gives its bytes with raw().
local function field_bytes(fi)
    local v = fi.value
    if type(v) == "string" then return v end
    if type(v) == "userdata" then
        local ok, bytes = pcall(function() return v:raw() end)
        if ok and type(bytes) == "string" then return bytes end
    end
    local ok, bytes = pcall(function() return fi.range:raw() end)
    if ok and type(bytes) == "string" then return bytes end
    return ""
end

-- The backend a response names: searched in the frame's own bytes (headers
-- and a body that fits one segment, exactly as sent), else in the body HTTP
-- reassembled, de-chunked or decompressed.
local function match_marker(raw)
    local m = marker_in(raw)
    if m then return m end
    local body = F.http_file_data() or F.h2_data()
    if body then return marker_in(field_bytes(body)) end
    return nil
end

local function is_http_port(port) return cfg.ports[port] == true end

-- A frame's connection, step (+FROM_B) and HTTP request, packed in one number:
-- one array slot per frame instead of three (memory is what large captures
-- cost). Steps < 64, connections < 2^23, requests < 2^24: within a double's 53 bits.
local CONN_SPAN = 8388608
local function pack_frame(c, step, h)
    return (h * CONN_SPAN + c) * 64 + step
end

local function unpack_frame(x)
    local step = x % 64
    local rest = (x - step) / 64
    local c = rest % CONN_SPAN
    -- x % 64 is already whole; the divisions give floats that Lua 5.4 would print as "3.0".
    return floor(c), step, floor((rest - c) / CONN_SPAN)
end

local function new_conn(c, pinfo, src, dst, flags, frame)
    local sport, dport = pinfo.src_port, pinfo.dst_port
    -- The initiator is whoever sent the SYN; mid-stream, whoever talks to the HTTP port.
    local src_is_a = true
    if has_bit(flags, TCP.SYN) then
        src_is_a = not has_bit(flags, TCP.ACK)
    elseif is_http_port(sport) and not is_http_port(dport) then
        src_is_a = false
    end
    if src_is_a then
        conn.a[c], conn.b[c], conn.aport[c], conn.bport[c] = src, dst, sport, dport
    else
        conn.a[c], conn.b[c], conn.aport[c], conn.bport[c] = dst, src, dport, sport
    end
    -- Both ends on one address (loopback, one host's farm): the server is its port.
    if src == dst then
        conn.b[c], conn.one_host[c] = endpoint(conn.b[c], conn.bport[c]), true
    end
    conn.t0[c], conn.first_frame[c] = pinfo.abs_ts, frame
    conn.client[c] = endpoint(conn.a[c], conn.aport[c])
    conn.gen[c] = -1
    conn.nreq[c], conn.first_h[c], conn.last_h[c], conn.resp_h[c] = 0, 0, 0, 0
    conn.synack[c], conn.hs_done[c], conn.fin_a[c], conn.fin_b[c], conn.last_ack[c] = 0, 0, 0, 0, 0
    conn.last_dir_resp[c], conn.fail_front[c], conn.pred[c] = false, 0, 0
    if c > conn.n then conn.n = c end
    local pair = note_pair(conn.a[c], conn.b[c], is_http_port(conn.bport[c]), false)
    pair.conns = pair.conns + 1
    ensure_roles()
    -- Predict the request index of a new front connection so that a single-pass
    -- run (no future) can still number its handshake; a resolve corrects it.
    if conn_leg(c) == LEG_FRONT then
        state.pending_front_conns = state.pending_front_conns + 1
        conn.pred[c] = state.front_count + state.pending_front_conns
    end
end

local function new_request(c, frame, pinfo, method, uri, xff)
    msg.n = msg.n + 1
    local h = msg.n
    msg.conn[h], msg.frame[h], msg.time[h] = c, frame, pinfo.abs_ts
    msg.method[h], msg.uri[h], msg.xff[h] = method, uri, xff
    msg.resp_frame[h], msg.resp_time[h], msg.status[h], msg.marker[h], msg.next[h] = 0, 0, 0, false, 0
    msg.fidx[h], msg.link[h], msg.backlink[h], msg.arp_backend[h], msg.fail[h] = 0, 0, 0, false, false
    if conn.last_h[c] ~= 0 then msg.next[conn.last_h[c]] = h else conn.first_h[c] = h end
    conn.last_h[c] = h
    if conn.resp_h[c] == 0 then conn.resp_h[c] = h end
    conn.nreq[c] = conn.nreq[c] + 1
    -- The request's earlier segments join it.
    local waiting = conn.pend[c]
    if waiting then
        for _, f in ipairs(waiting) do
            local _, step = unpack_frame(frames.pk[f])
            frames.pk[f] = pack_frame(c, step, h)
        end
        conn.pend[c] = nil
    end
    if xff then
        note_pair(conn.a[c], conn.b[c], true, true)
        note_host(xff, frame, nil)
    else
        note_pair(conn.a[c], conn.b[c], true, false)
    end
    return h
end

-- Provisional numbering and linking on first visit (single pass); resolve()
-- redoes both with the whole capture.
local function provisional_request(h)
    ensure_roles()
    local c = msg.conn[h]
    local leg = conn_leg(c)
    if leg == LEG_FRONT then
        state.front_count = state.front_count + 1
        msg.fidx[h] = state.front_count
        state.has_front = true
        if conn.nreq[c] == 1 and conn.pred[c] ~= 0 then
            state.pending_front_conns = math.max(0, state.pending_front_conns - 1)
        end
        state.last_open_front = h
    elseif leg == LEG_DIRECT then
        msg.ndirect = msg.ndirect + 1
        msg.didx[h] = msg.ndirect
    elseif leg == LEG_BACK then
        -- Earliest front request with the same method and URI still unlinked, among the
        -- last 64 HTTP messages. Messages before state.unlinked_from can match no back-leg
        -- request (linked, or no front request) until a resolve, which resets it.
        local last = state.last_open_front
        local from = state.unlinked_from
        while from <= last and (msg.fidx[from] <= 0 or msg.link[from] ~= 0) do from = from + 1 end
        state.unlinked_from = from
        local best = 0
        for f = math.max(from, last - 63), last do
            if msg.fidx[f] > 0 and msg.link[f] == 0
                and (msg.encrypted[f] or (msg.method[f] == msg.method[h] and msg.uri[f] == msg.uri[h])) then
                best = f
                break
            end
        end
        msg.fidx[h] = -1
        if best > 0 then
            msg.link[best], msg.backlink[h] = h, best
        elseif not state.has_front then
            state.front_count = state.front_count + 1
            msg.fidx[h] = state.front_count
        end
    end
end

-- Every HTTP request tshark dissected (HTTP/1 messages, HTTP/2 streams' headers),
-- so the report can account for each: retransmitted copies apart.
local function count_seen(mfi, original)
    local n = mfi and select("#", F.http_method()) or select("#", F.h2_method())
    state.http_seen = state.http_seen + n
    if not original then state.http_copies = state.http_copies + n end
end

-- Recording a TCP frame: its pieces live in this block (a Lua chunk allows 200
-- locals); record_tcp is the entry point.
local record_tcp
do
-- Which end sent this frame: A opened the connection. The first frame of a
-- connection also records the connection.
local function frame_from_a(c, frame, pinfo, flags)
    local from_a
    if conn.a[c] == nil then
        local src, dst = net_src(pinfo), net_dst(pinfo)
        if src == nil or dst == nil then return nil end
        new_conn(c, pinfo, src, dst, flags, frame)
        if conn.one_host[c] then
            note_host(conn.a[c], frame, nil)
            note_host(conn.b[c], frame, nil)
            from_a = pinfo.src_port == conn.aport[c]
        else
            note_host(src, frame, field_text(F.eth_src))
            note_host(dst, frame, nil)
            from_a = src == conn.a[c]
        end
    else
        from_a = pinfo.src_port == conn.aport[c]
        if conn.aport[c] == conn.bport[c] then from_a = net_src(pinfo) == conn.a[c] end
    end
    -- Learn each end's MAC (for roles of link-local ND frames) and TTL once.
    local me = from_a and conn.a[c] or conn.b[c]
    if hosts.ttl[me] == nil then
        local ttl = innermost(F.ip_ttl) or innermost(F.ipv6_hlim)
        hosts.ttl[me] = ttl and ttl.value or false
    end
    if hosts.mac[me] == nil then
        local mac = field_text(F.eth_src)
        if mac then hosts.mac[me] = mac; state.roles_dirty = true end
    end
    return from_a
end

-- The HTTP message a frame completes: method (request) or status (response),
-- its URI field, HTTP version, and the HTTP/2 stream (0: HTTP/1).
local function http_message()
    local mfi = F.http_method()
    if mfi ~= nil then
        return tostring(mfi.value), nil, first_value(F.http_uri), nil, 0, mfi
    end
    local code = first_value(F.http_code)
    if code ~= nil then return nil, code, nil, nil, 0 end
    -- HTTP/2 (decrypted with a key log): the first stream whose headers this frame carries.
    local method
    method, code = first_value(F.h2_method), first_value(F.h2_status)
    if method == nil and code == nil then return nil, nil, nil, nil, 0 end
    local sid = 0
    for _, fi in ipairs({ F.h2_streamid() }) do
        if fi.value ~= 0 then sid = fi.value; break end
    end
    return method and tostring(method), code, first_value(F.h2_path), "HTTP/2", sid
end

local function note_marker(c, h, m)
    msg.marker[h] = m
    local t = hosts.markers[conn.b[c]] or {}
    hosts.markers[conn.b[c]] = t
    if t[m] == nil then state.roles_dirty = true end
    t[m] = (t[m] or 0) + 1
    if conn.b[c] ~= nil then ensure_roles() end
end

-- The bytes an HTTP message was read from: the frame's, or the decrypted TLS data
-- (key log) or reassembled buffer the method field came from.
local function message_bytes(fi, tvb)
    if fi ~= nil then
        local ok, raw = pcall(function() return fi.source:raw() end)
        if ok and type(raw) == "string" then return raw end
    end
    return tvb:raw()
end

local function record_request(c, frame, pinfo, raw, method, uri, version, sid)
    local m = safe_text(method)
    local line_version
    uri, line_version = request_line(raw, method, tostring(uri or ""))
    version = version or line_version
    local xff, own, all = forwarded_client(raw)
    local port = conn.bport[c]
    if not state.http_ports[port] then
        state.http_ports[port] = true
        state.roles_dirty = true -- the port's connections may now be legs
    end
    local h = new_request(c, frame, pinfo, m, uri, xff)
    if own then msg.own_xff[h] = own end
    if all then msg.xff_all[h] = all end
    if version then msg.version[h] = smatch(tostring(version), "([%d.]+)") end
    if sid ~= 0 then
        conn.streams[c] = conn.streams[c] or {}
        conn.streams[c][sid] = h
    end
    provisional_request(h)
    conn.last_dir_resp[c] = false
    return h
end

-- Client data while no request waits for its response starts the next request
-- (HTTP shows the method on the segment that completes it): it waits for it.
local function pend(c, frame)
    local waiting = conn.pend[c]
    if waiting == nil then waiting = {}; conn.pend[c] = waiting end
    tinsert(waiting, frame)
end

-- The request a response answers: by stream (HTTP/2); else the request tshark paired
-- it with (http.request_in), so that a response tshark could not read (a lost
-- segment) shifts no later one; else the oldest unanswered one on the connection.
local function answered_request(c, sid)
    if sid ~= 0 then return (conn.streams[c] or {})[sid] or 0 end
    local req_frame = first_value(F.http_request_in)
    local pk = req_frame and frames.pk[req_frame]
    if pk then
        local rc, _, rh = unpack_frame(pk)
        if rc == c and rh ~= 0 and msg.frame[rh] == req_frame then return rh end
    end
    return conn.resp_h[c]
end

-- A response head's own words that a cache answered it, not an origin server: Age
-- above 0, X-Cache: HIT, or two transaction ids in X-Varnish (a hit names the
-- request that filled the cache too).
local function says_cache_hit(raw)
    local head = http_head(raw)
    local age = tonumber(first_match(head, "\nage:", "^\nage:[ \t]*(%d+)"))
    return (age ~= nil and age > 0) or first_match(head, "\nx-cache:", "^\nx%-cache:[ \t]*(hit)") ~= nil
        or first_match(head, "\nx-varnish:", "^\nx%-varnish:[ \t]*(%d+[ \t]+%d+)") ~= nil
end

-- Returns the request answered (0: none known) and the step.
local function record_response(c, frame, pinfo, tvb, code, sid)
    local status = tonumber(code) or 0
    local h = answered_request(c, sid)
    conn.last_dir_resp[c] = true
    if status >= 100 and status < 200 and status ~= 101 then
        -- Interim: the final answer is still to come. Before the request is complete
        -- (100 Continue to its headers) it waits with the request's first segments.
        frames.interim[frame] = status
        if h == 0 and conn.pend[c] ~= nil then pend(c, frame) end
        return h, S.INTERIM
    end
    if h ~= 0 and msg.resp_frame[h] == 0 then
        msg.resp_frame[h], msg.resp_time[h], msg.status[h] = frame, pinfo.abs_ts, status
        local raw = tvb:raw()
        if says_cache_hit(raw) then
            msg.cache_hit[h] = true -- the page was the cache's copy: its marker names no server
        else
            local m = match_marker(raw)
            if m then note_marker(c, h, m) end
        end
        if sid == 0 and (conn.resp_h[c] == 0 or h >= conn.resp_h[c]) then conn.resp_h[c] = msg.next[h] end
        -- 101 Switching Protocols: what follows is that request's new protocol (websocket).
        if status == 101 then conn.upgraded[c] = h end
    elseif h == 0 then
        h = conn.last_h[c]
    end
    return h, S.RESPONSE
end

-- TLS on a balancer's HTTPS port without the key log: what the records show.
-- Returns a TLS step, TLS_APP for application data, or nil when the frame holds
-- no TLS record header (the middle of a long record).
local TLS_APP = -1
local function tls_step(from_a, len)
    local kinds = { F.tls_content_type() }
    local app = F.tls_opaque_type() ~= nil
    if #kinds == 0 and not app then return nil end
    for _, fi in ipairs({ F.tls_handshake_type() }) do
        local t = fi.value
        if t == 1 then return S.TLS_CH end
        if t == 2 then return S.TLS_SH end
        if t == 4 then return S.DATA end -- NewSessionTicket (readable with the key log)
    end
    -- Decrypted (key log) application data that completes no HTTP message: HTTP/2's
    -- own frames (SETTINGS, WINDOW_UPDATE...) or an HTTP part. (tls.app_data_proto
    -- names the port's protocol even when nothing could be decrypted.)
    if F.http_proto() ~= nil or F.http2_proto() ~= nil then return S.DATA end
    local handshake, alert = false, false
    for _, fi in ipairs(kinds) do
        local k = fi.value
        if k == 23 then app = true
        elseif k == 21 then alert = true
        elseif k == 20 or k == 22 then handshake = true end
    end
    if alert then return S.TLS_CLOSE end
    if handshake then return S.TLS_FIN end
    -- TLS 1.3 hides the alert type: a client record too short to hold any HTTP
    -- request (2 bytes + type + tag + header) is its close_notify.
    if app and from_a and len <= 24 then return S.TLS_CLOSE end
    -- Nor can fewer than 40 bytes hold one ("GET / HTTP/1.0" and the record's own
    -- 22+ bytes): HTTP/2's small frames (SETTINGS ack, WINDOW_UPDATE) are data.
    if app and from_a and len < 40 then return S.DATA end
    if app then return TLS_APP end
    return nil
end

-- An encrypted request/response exchange as far as the records show it: client
-- data while nothing is outstanding opens a request, the server's next data
-- answers it. Returns step and request.
local function record_tls(c, frame, pinfo, from_a, len, h)
    local step = tls_step(from_a, len)
    if step == nil then return S.DATA, h end
    if step ~= TLS_APP then return step, h end
    if conn.decrypted[c] then
        -- The key log opened this connection: records that complete no message are
        -- parts of one (a request's first segments wait for it, as in plain HTTP).
        if from_a and conn.resp_h[c] == 0 then pend(c, frame); return S.DATA, 0 end
        return S.DATA, from_a and h or (conn.resp_h[c] ~= 0 and conn.resp_h[c] or h)
    end
    if from_a then
        -- Every client record big enough to hold a request is one, also while another
        -- is outstanding: HTTP/2 multiplexes streams (curl --http2, browsers), each
        -- in its own record. Answers come in request order (FIFO), as far as known.
        local first = conn.first_h[c]
        h = new_request(c, frame, pinfo, "", "", nil)
        msg.encrypted[h] = true
        -- A connection's first record followed by another before any answer is the
        -- HTTP/2 preface and settings (an HTTP/1 client waits for its response): it
        -- joins the first real request.
        if first ~= 0 and msg.next[first] == h and msg.encrypted[first]
            and msg.resp_frame[first] == 0 and not msg.merged[first] then
            msg.merged[first] = h
            if conn.resp_h[c] == first then conn.resp_h[c] = h end
        end
        provisional_request(h)
        conn.last_dir_resp[c] = false
        return S.REQUEST, h
    end
    local waiting = conn.resp_h[c]
    if waiting ~= 0 and msg.encrypted[waiting] then
        msg.resp_frame[waiting], msg.resp_time[waiting] = frame, pinfo.abs_ts
        conn.resp_h[c] = msg.next[waiting]
        conn.last_dir_resp[c] = true
        return S.RESPONSE, waiting
    end
    return S.DATA, h
end

local function teardown_step(c, frame, from_a, flags, len, step)
    if has_bit(flags, TCP.FIN) then
        if from_a then
            if conn.fin_a[c] == 0 then conn.fin_a[c] = frame end
        elseif conn.fin_b[c] == 0 then
            conn.fin_b[c] = frame
        end
        if step == S.ACK or step == S.DATA then step = from_a and S.FIN_A or S.FIN_B end
    elseif step == S.ACK and len == 0 then
        if conn.fin_a[c] ~= 0 and conn.fin_b[c] ~= 0 and conn.last_ack[c] == 0 then
            step = S.LAST_ACK; conn.last_ack[c] = frame
        elseif (from_a and conn.fin_b[c] ~= 0 and conn.fin_a[c] == 0)
            or (not from_a and conn.fin_a[c] ~= 0 and conn.fin_b[c] == 0) then
            step = S.ACK_FIN
        elseif conn.synack[c] ~= 0 and conn.hs_done[c] == 0 and from_a then
            conn.hs_done[c] = frame
        elseif from_a and conn.last_dir_resp[c] then
            step = S.ACK_RESP
        elseif not from_a and conn.nreq[c] > 0 and not conn.last_dir_resp[c] then
            step = S.ACK_REQ
        end
    end
    return step
end

function record_tcp(frame, pinfo, stream, tvb)
    local c = stream + 1
    local flags, len = first_value(F.tcp_flags) or 0, first_value(F.tcp_len) or 0
    local from_a = frame_from_a(c, frame, pinfo, flags)
    if from_a == nil then return end
    local findings = tcp_findings()
    local step, h = S.ACK, conn.last_h[c]
    if has_bit(flags, TCP.RST) then
        step = S.RST
    elseif has_bit(flags, TCP.SYN) then
        step = has_bit(flags, TCP.ACK) and S.SYNACK or S.SYN
        if step == S.SYNACK then conn.synack[c] = frame end
    end

    local method, code, uri, version, sid, mfi
    if len > 0 then method, code, uri, version, sid, mfi = http_message() end
    local original = not has_bit(findings, FL.RETRANS)
    -- (A server's HTTP/2 PUSH_PROMISE carries a method too: what it promises is no request.)
    if method ~= nil and from_a then count_seen(mfi, original) end
    if (method ~= nil or code ~= nil) and cfg.https[conn.bport[c]] then conn.decrypted[c] = true end
    if method ~= nil and from_a and original then
        h = record_request(c, frame, pinfo, message_bytes(mfi, tvb), method, uri, version, sid)
        if step == S.ACK then step = S.REQUEST end
    elseif code ~= nil and not from_a and original then
        local answer
        h, answer = record_response(c, frame, pinfo, tvb, code, sid)
        if step == S.ACK then step = answer end
    elseif len > 0 and step == S.ACK and original and cfg.https[conn.bport[c]] then
        step, h = record_tls(c, frame, pinfo, from_a, len, h)
    elseif len > 0 and step == S.ACK then
        step = S.DATA
        conn.last_dir_resp[c] = not from_a
        if conn.upgraded[c] then
            h = conn.upgraded[c]
        elseif not from_a then
            if conn.resp_h[c] ~= 0 then h = conn.resp_h[c] end
        elseif conn.resp_h[c] == 0 then
            pend(c, frame)
            h = 0
        end
    end
    step = teardown_step(c, frame, from_a, flags, len, step)

    -- While client data waits for its request, what follows on the connection
    -- (the server's ACK of it) waits too.
    if h ~= 0 and conn.pend[c] ~= nil and step ~= S.REQUEST then
        pend(c, frame)
        h = 0
    end
    -- The direction rides on the step (+FROM_B) so labelling needs no pinfo.
    frames.pk[frame] = pack_frame(c, from_a and step or step + FROM_B, h)
    if findings ~= 0 then frames.flags[frame] = findings end
end
end

local function record_arp(frame, pinfo)
    local op = first_value(F.arp_opcode)
    local sender, target = field_text(F.arp_src), field_text(F.arp_dst)
    if op == nil or sender == nil or target == nil then return end
    if sender == target then return end -- gratuitous ARP: announces, asks nobody
    nbr.n = nbr.n + 1
    nbr.time[nbr.n], nbr.front[nbr.n] = pinfo.abs_ts, 0
    if op == 1 then
        nbr.kind[nbr.n], nbr.asker[nbr.n], nbr.subject[nbr.n] = S.ARP_REQ, sender, target
        -- A refresh (Linux probing a stale entry) goes to the MAC the asker has, not
        -- to broadcast; a cooked capture (-i any) has no Ethernet header, but some
        -- stacks name the target MAC in the ARP body then.
        local group = first_value(F.eth_dst_group)
        local hw = field_text(F.arp_dst_hw)
        if group == false or (group == nil and hw and hw ~= "00:00:00:00:00:00"
            and hw ~= "ff:ff:ff:ff:ff:ff") then
            nbr.refresh[nbr.n] = true
            nbr.refresh_pair[sender .. "|" .. target] = true
        end
    else
        nbr.kind[nbr.n], nbr.asker[nbr.n], nbr.subject[nbr.n] = S.ARP_REPLY, target, sender
        -- The answer to a refresh is part of it.
        if nbr.refresh_pair[target .. "|" .. sender] then nbr.refresh[nbr.n] = true end
    end
    note_host(sender, frame, field_text(F.eth_src))
    -- The address asked for is a host of the farm too (a client sees the
    -- backends only this way).
    note_host(target, frame, nil)
    state.roles_dirty = true
    frames.arp[frame], frames.pk[frame] = nbr.n, pack_frame(0, nbr.kind[nbr.n], 0)
end

local function record_nd(frame, pinfo, icmp_type)
    local mac = field_text(F.eth_src)
    local src = net_src(pinfo)
    if src == nil then return end
    nbr.n = nbr.n + 1
    nbr.time[nbr.n], nbr.front[nbr.n] = pinfo.abs_ts, 0
    if icmp_type == 135 then
        nbr.kind[nbr.n], nbr.asker[nbr.n], nbr.subject[nbr.n] = S.ND_SOL, src, field_text(F.nd_ns_target)
        -- Sent to the target itself, not its solicited-node group: a refresh.
        local dst = net_dst(pinfo)
        if dst and not sfind(dst, "^ff02:") then nbr.refresh[nbr.n] = true end
    else
        local subject = field_text(F.nd_na_target) or src
        nbr.kind[nbr.n], nbr.asker[nbr.n], nbr.subject[nbr.n] = S.ND_ADV, net_dst(pinfo), subject
    end
    note_host(src, frame, mac)
    if nbr.subject[nbr.n] then note_host(nbr.subject[nbr.n], frame, nil) end
    state.roles_dirty = true
    frames.arp[frame], frames.pk[frame] = nbr.n, pack_frame(0, nbr.kind[nbr.n], 0)
end

-- Single pass (no resolve yet): M3 asking ARP/ND while the latest request waits
-- for a backend joins that request; resolve() links every record afresh.
local function attach_to_waiting_request(a)
    if nbr.front[a] ~= 0 or (nbr.kind[a] ~= S.ARP_REQ and nbr.kind[a] ~= S.ND_SOL)
        or role(nbr.asker[a]) ~= ROLE_BALANCER then
        return
    end
    local front = state.last_open_front
    if front == 0 or msg.resp_frame[front] ~= 0 then return end
    nbr.front[a] = front
    local rs = role(nbr.subject[a])
    if is_backend(rs) and not msg.arp_backend[front] then msg.arp_backend[front] = rs end
end

-- Whether Wireshark built no tree for this dissection: then no extractor returns
-- anything (tshark -2's first pass without a filter). Only asked of frames that gave
-- nothing to record.
local function no_tree(tree)
    return sfind(tostring(tree), "has subtree=false", 1, true) ~= nil
end

local function record(frame, pinfo, tvb, tree)
    state.record_gen = state.record_gen + 1
    frames.pk[frame] = 0
    local stream = first_value(F.tcp_stream)
    if stream ~= nil then
        record_tcp(frame, pinfo, stream, tvb)
        return
    end
    if first_value(F.arp_opcode) ~= nil then
        record_arp(frame, pinfo)
        return
    end
    local icmp_type = first_value(F.icmpv6_type)
    if icmp_type == 135 or icmp_type == 136 then
        record_nd(frame, pinfo, icmp_type)
    elseif not pinfo.visited and not gui_enabled() and no_tree(tree) then
        -- Nothing could be read: the frame is recorded when shown (one pass, in order; tshark
        -- only: the GUI shows frames in any order).
        frames.pk[frame] = nil
        state.treeless = true
    end
end

------------------------------------------------------------------------------
-- What labelling reads from the packet itself rather than from the tables: from the
-- frame being dissected, or, while -z lblab,labels writes every frame's labels once the
-- capture is read (state.drawing: no packet at hand), as the only pass noted it.
------------------------------------------------------------------------------
local packet = {}

-- Every frame, first: its time as PDML writes it ("%d.%09d" of the int secs and nsecs).
function packet.note_time(frame)
    if frame > state.last_frame then state.last_frame = frame end
    local fi = F.frame_time()
    if fi == nil then return end
    local t = fi.value
    frames.secs[frame], frames.nsecs[frame] = t.secs, t.nsecs
end

-- After recording, the frame still at hand: what labelling will read of it, read now by
-- the same accessors (state.drawing is false) and kept for when it is not.
function packet.note(frame, pinfo)
    local pk = frames.pk[frame]
    if pk == nil then return end
    if frames.arp[frame] then
        frames.mac[frame] = packet.src_mac(frame) or false
        frames.group[frame] = packet.to_group(frame) and true or false
    elseif unpack_frame(pk) == 0 then
        local src, dst = packet.addresses(frame, pinfo)
        frames.src[frame], frames.dst[frame] = src or false, dst or false
        frames.other[frame] = packet.other_kind(frame)
    end
end

function packet.to_group(frame)
    if state.drawing then return frames.group[frame] end
    return first_value(F.eth_dst_group)
end

function packet.src_mac(frame)
    if state.drawing then return frames.mac[frame] or nil end
    return field_text(F.eth_src)
end

function packet.addresses(frame, pinfo)
    if state.drawing then return frames.src[frame] or nil, frames.dst[frame] or nil end
    return net_src(pinfo), net_dst(pinfo)
end

-- packet.other_kind(frame): beside frame_kind, which reads it.

------------------------------------------------------------------------------
-- Resolving (once, before frames are shown again): links that need the future
------------------------------------------------------------------------------
-- The front request a back-leg request h serves: the earliest unlinked front
-- request with the same method and URI from the forwarded client that arrived
-- before it and was answered after the backend answered.
-- When a front request was answered, as far as the capture tells: an encrypted
-- exchange's first server record may be a TLS 1.3 session ticket, not the answer.
local function answered_at(f)
    if msg.encrypted[f] then return 0 end
    return msg.resp_time[f]
end

local function link_back_requests(fronts)
    -- When the balancer stamps X-Forwarded-For on what it forwards, a back-leg
    -- request without it is the balancer's own (a health check), never a client's.
    local stamped = false
    for h = 1, msg.n do
        if msg.fidx[h] == -1 and msg.xff[h] then stamped = true; break end
    end
    local head = 1
    for h = 1, msg.n do
        if msg.fidx[h] == -1 and (msg.xff[h] or not stamped) then -- a forwarded request
            local bt, brt = msg.time[h], msg.resp_time[h]
            while head <= #fronts and (msg.link[fronts[head]] ~= 0
                or (answered_at(fronts[head]) ~= 0 and answered_at(fronts[head]) < bt)) do
                head = head + 1
            end
            local i = head
            while i <= #fronts do
                local f = fronts[i]
                if msg.time[f] > bt then break end
                local frt = answered_at(f)
                if msg.link[f] == 0
                    and (msg.encrypted[f] or (msg.method[f] == msg.method[h] and msg.uri[f] == msg.uri[h]))
                    and (msg.xff[h] == nil or msg.xff[h] == conn.a[msg.conn[f]])
                    and (frt == 0 or brt == 0 or brt <= frt) then
                    msg.link[f], msg.backlink[h] = h, f
                    break
                end
                i = i + 1
            end
        end
    end
end

-- At M3, an encrypted client record that no back-leg request answers, on a
-- connection whose other records the back legs do answer, is the connection's own
-- traffic (HTTP/2's preface and settings), not a request: it joins the next
-- request on its connection (the previous one at the end). Returns the new list.
function link.without_setup_records(fronts)
    local linked = {}
    for _, f in ipairs(fronts) do
        if msg.link[f] ~= 0 then linked[msg.conn[f]] = true end
    end
    local kept = {}
    for i, f in ipairs(fronts) do
        local c = msg.conn[f]
        if msg.encrypted[f] and msg.link[f] == 0 and linked[c] then
            local into = msg.next[f] ~= 0 and msg.next[f] or nil
            if into == nil then
                for j = i - 1, 1, -1 do
                    if msg.conn[fronts[j]] == c then into = fronts[j]; break end
                end
            end
            msg.merged[f] = into
            msg.fidx[f] = 0
        else
            tinsert(kept, f)
            msg.fidx[f] = #kept
        end
    end
    return kept
end

-- A forwarded back-leg request that no front request explains, while that client
-- had an encrypted connection to M3 open: an exchange the TLS records did not
-- show apart (HTTP/2 streams, pipelined requests). It becomes a request of its
-- own, numbered with the others in arrival order. Returns the new fronts list.
function link.with_unseen_exchanges(fronts)
    local open = {} -- client address -> encrypted front requests
    for _, f in ipairs(fronts) do
        if msg.encrypted[f] then
            local a = conn.a[msg.conn[f]]
            open[a] = open[a] or {}
            tinsert(open[a], f)
        end
    end
    if next(open) == nil then return fronts end
    local added = false
    for h = 1, msg.n do
        if msg.fidx[h] == -1 and msg.backlink[h] == 0 and msg.xff[h] and open[msg.xff[h]] then
            for _, f in ipairs(open[msg.xff[h]]) do
                local c = msg.conn[f]
                local closed = conn.fin_a[c] ~= 0 and conn.fin_a[c] < msg.frame[h]
                if msg.time[f] <= msg.time[h] and not closed then
                    msg.unseen[h] = f
                    tinsert(fronts, h)
                    added = true
                    break
                end
            end
        end
    end
    if not added then return fronts end
    tsort(fronts, function(x, y)
        if msg.time[x] ~= msg.time[y] then return msg.time[x] < msg.time[y] end
        return x < y
    end)
    for i, f in ipairs(fronts) do msg.fidx[f] = i end
    return fronts
end

-- Index of the last front request that arrived at or before time t.
local function front_at(fronts, t)
    local lo, hi = 1, #fronts
    local ans = 0
    while lo <= hi do
        local mid = floor((lo + hi) / 2)
        if msg.time[fronts[mid]] <= t then ans = mid; lo = mid + 1 else hi = mid - 1 end
    end
    return ans
end

local function in_progress(f, t)
    local c = msg.conn[f]
    return msg.time[f] <= t and (msg.resp_time[f] == 0 or msg.resp_time[f] >= t) and conn.t0[c] <= t
end

-- The first back-leg connection a front request used (linked request's conn).
local function back_conn_of(f)
    local b = msg.link[f]
    if b == 0 then return 0 end
    return msg.conn[b]
end

-- The front request that was waiting at time t for an upstream attempt (to
-- `target`, when given): the one whose linked back-leg connection opens soonest
-- after t. Else, as a fallback, the latest one waiting with no back leg at all.
local function waiting_front(fronts, t, target)
    local best, best_gap, fallback = 0, math.huge, 0
    local i = front_at(fronts, t)
    local scanned = 0
    while i >= 1 and scanned < 256 do
        local f = fronts[i]
        if in_progress(f, t) then
            local bc = back_conn_of(f)
            if bc ~= 0 and (target == nil or conn.b[bc] == target) and conn.t0[bc] >= t
                and conn.t0[bc] - t < best_gap then
                best, best_gap = f, conn.t0[bc] - t
            elseif bc == 0 and msg.arp_backend[f] == false then
                -- The earliest still waiting (the balancer dispatches in arrival order).
                fallback = f
            end
        end
        i = i - 1
        scanned = scanned + 1
    end
    if best ~= 0 then return best end
    return fallback
end

-- A back-leg connection that never got going (refused: no SYN/ACK, or reset
-- before any request) belongs to the front request that was waiting then and
-- either went on to another backend (failover) or got none at all (502). An
-- established connection that carries no request (a TCP health check, an
-- idle pre-connect) belongs to no request.
local function link_failed_conns(fronts)
    for c = 1, conn.n do
        if conn.a[c] ~= nil and conn.nreq[c] == 0 and conn.synack[c] == 0 and conn_leg(c) == LEG_BACK then
            local best = waiting_front(fronts, conn.t0[c], nil)
            conn.fail_front[c] = best
            if best ~= 0 then msg.fail[best] = true end
        end
    end
end

-- ARP who-has / ND solicitations (and their answers) join the request that
-- was waiting for that address.
local function link_arps(fronts)
    local last_ask = {}
    for i = 1, nbr.n do
        local asker, subject, t = nbr.asker[i], nbr.subject[i], nbr.time[i]
        local ra, rs = role(asker), role(subject)
        local front = 0
        local is_answer = nbr.kind[i] == S.ARP_REPLY or nbr.kind[i] == S.ND_ADV
        local key = (asker or "") .. "|" .. (subject or "")
        if is_answer then
            front = last_ask[key] or 0
        elseif ra == ROLE_BALANCER and is_backend(rs) then
            -- M3 looks for a backend: the request whose upstream attempt to it comes next.
            front = waiting_front(fronts, t, subject)
            if front ~= 0 and msg.arp_backend[front] == false then msg.arp_backend[front] = rs end
        elseif ra == ROLE_CLIENT and rs == ROLE_BALANCER then
            -- A client looks for M3: the request it is about to send.
            local j = front_at(fronts, t) + 1
            while j <= #fronts and msg.time[fronts[j]] - t < 5 do
                local f = fronts[j]
                if conn.a[msg.conn[f]] == asker then front = f; break end
                j = j + 1
            end
        end
        nbr.front[i] = front
        if not is_answer then last_ask[key] = front end
    end
end

local function resolve()
    ensure_roles()
    -- Number the front requests in the order they reach M3; mark back-leg ones.
    local fronts = {}
    msg.didx, msg.ndirect = {}, 0
    msg.unseen = {} -- derived here each time (a live capture resolves again)
    state.unlinked_from = 1 -- links are redone: a first visit after this scans afresh
    for h = 1, msg.n do
        msg.link[h], msg.backlink[h], msg.fail[h], msg.arp_backend[h] = 0, 0, false, false
        local leg = conn_leg(msg.conn[h])
        if leg == LEG_FRONT and msg.merged[h] then
            msg.fidx[h] = 0 -- no request: part of the one it joined
        elseif leg == LEG_FRONT then
            tinsert(fronts, h)
            msg.fidx[h] = #fronts
        elseif leg == LEG_BACK then
            msg.fidx[h] = -1
        else
            msg.fidx[h] = 0
            if leg == LEG_DIRECT then msg.ndirect = msg.ndirect + 1; msg.didx[h] = msg.ndirect end
        end
    end
    state.has_front = #fronts > 0
    if state.has_front then
        link_back_requests(fronts)
        fronts = link.without_setup_records(fronts)
        fronts = link.with_unseen_exchanges(fronts)
    else
        -- Seen from a backend: the back-leg requests are the requests.
        local n = 0
        for h = 1, msg.n do
            if msg.fidx[h] == -1 then n = n + 1; msg.fidx[h] = n end
        end
    end
    for c = 1, conn.n do conn.fail_front[c] = 0 end
    if state.has_front then link_failed_conns(fronts) end
    link_arps(fronts)

    -- Role addresses, each defined on the first frame where it appears.
    state.frame_defs = {}
    for addr, r in pairs(state.role_of) do
        local f = hosts.first_frame[addr]
        if f then
            state.frame_defs[f] = state.frame_defs[f] or {}
            tinsert(state.frame_defs[f], r .. "=" .. addr)
        end
    end
    for _, defs in pairs(state.frame_defs) do tsort(defs) end

    frames.req = {}
    msg.label_backend, msg.label_evidence = {}, {}
    infer.count_left_out()
    state.resolved_gen = state.record_gen
    debuglog.note("resolved", { requests = #fronts, http_messages = msg.n, connections = conn.n,
        direct = msg.ndirect, neighbour_records = nbr.n })
end

------------------------------------------------------------------------------
-- Labelling
------------------------------------------------------------------------------
-- The per-packet labels' fields, by slot (L.<name>, the order of lblab.pkt).
local LABEL_FIELD = {}
for i, name in ipairs(LABELS) do LABEL_FIELD[i] = pf[name] end
local NLABELS = #LABELS
local compact_labels = {}

-- A per-packet label: its own field, or (compact mode) a slot of lblab.pkt.
local function label(t, slot, value)
    if cfg.compact then
        compact_labels[slot] = value
    else
        tree_add(t, LABEL_FIELD[slot], value)
    end
end

-- Label values are strings and numbers, which table.concat joins itself: no tostring
-- call per slot and packet.
local function flush_compact(t)
    local parts = compact_labels
    for i = 1, NLABELS do
        if parts[i] == nil then parts[i] = "" end
    end
    tree_add(t, pf.pkt, tconcat(parts, ";", 1, NLABELS))
    for i = 1, NLABELS do parts[i] = nil end
end

-- The front request (hreq id) a TCP frame of connection c, recorded as part
-- of HTTP request h (0: before the first), belongs to, or 0.
local function front_of_tcp_frame(c, h)
    if h == 0 then
        h = conn.first_h[c]
        if h == 0 then return conn.fail_front[c] end
    end
    if msg.merged[h] then h = msg.merged[h] end
    if msg.fidx[h] == -1 then return msg.backlink[h] end
    return h
end

local function request_of_frame(frame, c, h)
    local front = 0
    if c ~= 0 then
        front = front_of_tcp_frame(c, h)
    else
        local a = frames.arp[frame] or 0
        if a ~= 0 then
            front = nbr.front[a]
        end
    end
    if front ~= 0 and msg.fidx[front] > 0 then return front end
    return 0
end

-- Backend role (or false) and evidence of a request, from the tables.
local function compute_backend(front)
    local b = msg.link[front]
    if b ~= 0 then return role(conn.b[msg.conn[b]]) or false, EV.BACKLEG end
    local c = msg.conn[front]
    if conn_leg(c) == LEG_BACK then return role(conn.b[c]) or false, EV.BACKLEG end
    -- A cache hit: the balancer answered; the page's marker names whoever filled the cache.
    if msg.cache_hit[front] then return false, EV.CACHE end
    if msg.marker[front] then return msg.marker[front], EV.MARKER end
    if msg.arp_backend[front] then return msg.arp_backend[front], EV.ARP end
    return false, EV.NONE
end

-- Cached once resolved (the GUI re-dissects frames many times); computed
-- afresh on a first visit, where the tables still grow.
local function backend_of(front, visited)
    if not visited then return compute_backend(front) end
    local backend = msg.label_backend[front]
    if backend == nil then
        local ev
        backend, ev = compute_backend(front)
        msg.label_backend[front], msg.label_evidence[front] = backend, ev
    end
    return backend, msg.label_evidence[front]
end

local function client_of(front)
    if msg.unseen[front] then return conn.client[msg.conn[msg.unseen[front]]] end
    local c = msg.conn[front]
    if conn_leg(c) == LEG_BACK then return msg.xff[front] end
    return conn.client[c]
end

local function flags_text(bits)
    local names = {}
    for _, fl in ipairs(FLAG_NAMES) do
        if has_bit(bits, fl[1]) then tinsert(names, fl[2]) end
    end
    return tconcat(names, ",")
end

local function add_tcp_labels(t, frame, c, step, h)
    local leg, ra, rb = conn_roles(c)
    local rs, rd = ra, rb
    if step > FROM_B then step, rs, rd = step - FROM_B, rb, ra end
    -- A record that turned out to be no request (HTTP/2 setup) is data of the one it joined.
    if h ~= 0 and msg.merged[h] and (step == S.REQUEST or step == S.RESPONSE) then step = S.DATA end
    if rs then label(t, L.src_role, rs) end
    if rd then label(t, L.dst_role, rd) end
    if leg ~= LEG_NONE then
        local names = rb == ROLE_SERVER and SERVER_STEP or LEG_STEPS[leg]
        label(t, L.step, names[step]); label(t, L.leg, LEG_NAME[leg])
    end
    local bits = frames.flags[frame] or 0
    if bits ~= 0 then label(t, L.flags, flags_text(bits)) end
    if h ~= 0 then
        -- Facts read once per message, not per frame: each field added to
        -- every frame costs tshark measurably (bench/bench_plugin.py).
        if step == S.REQUEST and msg.frame[h] == frame then
            tree_add(t, pf.conn, c - 1)
            if msg.encrypted[h] then
                tree_add(t, pf.encrypted, true)
            else
                tree_add(t, pf.method, msg.method[h]); tree_add(t, pf.uri, msg.uri[h])
                -- What the client sent was encrypted; only the back leg is readable.
                if msg.unseen[h] then tree_add(t, pf.encrypted, true) end
            end
            tree_add(t, pf.scheme, cfg.https[conn.bport[c]] and "https" or "http")
            if msg.version[h] then tree_add(t, pf.http_version, msg.version[h]) end
        elseif step == S.RESPONSE and msg.resp_frame[h] == frame then
            tree_add(t, pf.conn, c - 1)
            if msg.encrypted[h] then
                tree_add(t, pf.encrypted, true)
            else
                tree_add(t, pf.status, msg.status[h])
            end
            if msg.marker[h] then tree_add(t, pf.marker, msg.marker[h]) end
        end
    end
    if step == S.INTERIM and frames.interim[frame] then tree_add(t, pf.interim, frames.interim[frame]) end
    if step == S.RST then tree_add_expert(t, ex.rst) end
    return leg, step
end

local function add_arp_labels(t, frame)
    local a = frames.arp[frame]
    local kind = nbr.kind[a]
    local asker, subject = nbr.asker[a], nbr.subject[a]
    local is_answer = kind == S.ARP_REPLY or kind == S.ND_ADV
    local rs = role(is_answer and subject or asker)
    if rs == nil then
        -- ND from a link-local address: the sender's MAC tells its role.
        local mac = packet.src_mac(frame)
        if mac then rs = state.mac_role[mac] end
    end
    if rs then label(t, L.src_role, rs) end
    if is_answer then
        local rd = role(asker)
        if rd then label(t, L.dst_role, rd) end
    else
        local rsub = subject and role(subject)
        if packet.to_group(frame) then
            label(t, L.dst_role, ROLE_BROADCAST)
        elseif rsub then
            label(t, L.dst_role, rsub)
        end
        if rsub then label(t, L.arp_target, rsub) end
    end
    label(t, L.step, ARP_STEP[kind])
    label(t, L.leg, LEG_NAME[LEG_ARP])
end

-- What the client wrote itself in X-Forwarded-For: all of it on the front leg;
-- on the back leg, the values before the balancer's own.
local function client_written_xff(front)
    if conn_leg(msg.conn[front]) == LEG_FRONT then
        if msg.xff_all[front] then return msg.xff_all[front] end
        local b = msg.link[front]
        return b ~= 0 and msg.own_xff[b] or nil
    end
    return msg.own_xff[front]
end

local function add_request_labels(t, front, frame, leg, step, h, visited)
    label(t, L.req, msg.fidx[front])
    if step == S.REQUEST or step == S.RESPONSE then
        local client = client_of(front)
        if client then tree_add(t, pf.client, client) end
        if step == S.REQUEST and h == front and msg.frame[front] == frame then
            local own = client_written_xff(front)
            if own then tree_add(t, pf.client_xff, own) end
        end
    end
    local backend, evidence = backend_of(front, visited)
    if backend then label(t, L.backend, backend) end
    label(t, L.backend_evidence, EVIDENCE_NAME[evidence])
    if leg == LEG_FRONT and h == front then
        if step == S.REQUEST and msg.frame[front] == frame then
            if visited and msg.resp_frame[front] == 0 then tree_add_expert(t, ex.no_response) end
            if msg.fail[front] and msg.link[front] ~= 0 then tree_add_expert(t, ex.failover) end
        elseif step == S.RESPONSE and msg.resp_frame[front] == frame and msg.status[front] >= 500
            and msg.link[front] == 0 then
            tree_add_expert(t, ex.balancer_5xx)
        end
    end
end

-- Frames in no request: what kind of traffic they are (so "other" reads as an
-- explanation), and a direct request's own index.
local KIND_BY_PORT = { [22] = "ssh", [53] = "dns", [123] = "ntp", [5353] = "mdns", [67] = "dhcp",
    [68] = "dhcp", [443] = "tls", [853] = "tls", [8443] = "tls" }

local function frame_kind(frame, c, leg)
    if c ~= 0 then
        if leg == LEG_DIRECT then return LEG_NAME[LEG_DIRECT] end
        if is_farm_port(conn.bport[c]) then return "http" end
        return KIND_BY_PORT[conn.bport[c]] or KIND_BY_PORT[conn.aport[c]] or "tcp"
    end
    local a = frames.arp[frame]
    if a then
        if nbr.refresh[a] then return "neighbour-refresh" end
        if nbr.kind[a] == S.ND_SOL or nbr.kind[a] == S.ND_ADV then return "nd" end
        return "arp"
    end
    return packet.other_kind(frame)
end

-- A frame in no connection and no ARP/ND: what kind of traffic it is.
function packet.other_kind(frame)
    if state.drawing then return frames.other[frame] end
    local sport = first_value(F.udp_srcport)
    if sport then return KIND_BY_PORT[first_value(F.udp_dstport)] or KIND_BY_PORT[sport] or "udp" end
    if F.icmp_type() or F.icmpv6_type() then return "icmp" end
    return "other"
end

local function add_outside_labels(t, frame, c, leg, step, h)
    if leg == LEG_DIRECT then
        local first = h ~= 0 and h or conn.first_h[c]
        local d = first ~= 0 and msg.didx[first]
        if d then label(t, L.direct, d) end
        if h ~= 0 and ((step == S.REQUEST and msg.frame[h] == frame)
            or (step == S.RESPONSE and msg.resp_frame[h] == frame)) then
            tree_add(t, pf.client, conn.client[c])
        end
    end
    label(t, L.kind, frame_kind(frame, c, leg))
end

function debuglog.add(t, frame, visited, c, step, h, front)
    tree_add(t, pf.debug, sformat("connection %d, step %d, HTTP message %d, request %d",
        c - 1, step, h, front))
    if visited and frame == 1 then
        for _, line in pairs(state.debug_log) do tree_add(t, pf.debug, line) end
    end
end

do
-- One frame's labels under `tree` (pinfo: nil while -z lblab,labels writes them).
local function label_frame(tree, frame, visited, late, pinfo)
    if state.roles_dirty then infer_roles() end
    local t = tree_add(tree, lblab)
    if late and frame == 1 then tree_add_expert(t, ex.one_pass) end
    local c, step, h = unpack_frame(frames.pk[frame])
    local leg = LEG_NONE
    if c ~= 0 then
        leg, step = add_tcp_labels(t, frame, c, step, h)
    elseif frames.arp[frame] then
        add_arp_labels(t, frame)
    else
        local src, dst = packet.addresses(frame, pinfo)
        local rs, rd = src and role(src), dst and role(dst)
        if rs then label(t, L.src_role, rs) end
        if rd then label(t, L.dst_role, rd) end
    end

    -- The request a frame belongs to, cached per frame once resolved.
    local front
    if visited then
        front = frames.req[frame]
        if front == nil then
            front = request_of_frame(frame, c, h)
            frames.req[frame] = front
        end
    else
        front = request_of_frame(frame, c, h)
        if front == 0 and c ~= 0 and conn.pred[c] ~= 0 and conn.first_h[c] == 0 then
            -- Single pass, handshake of a front connection whose request is
            -- still to come: the predicted index.
            label(t, L.req, conn.pred[c])
        end
    end
    if front ~= 0 then
        add_request_labels(t, front, frame, leg, step, h, visited)
    else
        add_outside_labels(t, frame, c, leg, step, h)
    end

    if visited then
        if c ~= 0 and leg == LEG_BACK and front == 0 and state.has_front and conn.first_frame[c] == frame then
            tree_add_expert(t, ex.orphan_backleg)
        end
        local defs = state.frame_defs[frame]
        if defs then
            for _, d in ipairs(defs) do tree_add(t, pf.role_def, d) end
        end
        if frame == 1 then
            tree_add(t, pf.balancer_evidence, tconcat(state.balancer_evidence, ","))
            if cfg.configured then tree_add(t, pf.lab_applied, state.lab_applied == true) end
            tree_add(t, pf.http_ports, sorted_keys(state.http_ports))
            tree_add(t, pf.http_requests_seen, state.http_seen)
            tree_add(t, pf.http_request_copies, state.http_copies)
            for _, b in ipairs(state.left_out) do tree_add(t, pf.other_balancer, b) end
        end
    end
    if cfg.debug then debuglog.add(t, frame, visited, c, step, h, front) end
    if cfg.compact then flush_compact(t) end
end

-- The postdissector's work (lblab.dissector, at the end, runs it: with -z lblab,labels it
-- also notes each frame's time and catches its Lua errors).
local function record_and_label(tvb, pinfo, tree)
    local frame = pinfo.number
    local visited = pinfo.visited
    -- tshark -2 whose first pass had no tree: the second pass is the only one, labelled
    -- as one pass is (frames in order). Not in the GUI, which shows frames in any order.
    local late = visited and state.treeless and not gui_enabled()
    if late then visited = false end
    -- Record each frame once, whatever the number of first-pass dissections.
    if frames.pk[frame] == nil then
        record(frame, pinfo, tvb, tree)
        if state.labels_wanted then packet.note(frame, pinfo) end
        if frames.pk[frame] == nil then return end -- no tree: nothing to read or label
        if state.roles_dirty then infer_roles() end
        if not visited and frames.arp[frame] then attach_to_waiting_request(frames.arp[frame]) end
    end
    if visited and state.resolved_gen ~= state.record_gen then resolve() end
    if cfg.two_pass and not visited and not late then return end -- tshark -2 discards these labels
    label_frame(tree, frame, visited, late, pinfo)
end

------------------------------------------------------------------------------
-- lbreport's labels: `tshark -n -q -Y frame -o lblab.two_pass:TRUE -z lblab,labels`. The
-- only pass records (a tree for the extractors, no label items); once the capture is read
-- every frame's labels are written, one line each: frame, time, then name=value for each
-- label field its tree would carry (docs/fields.md). One dissection instead of tshark -2's
-- two, and no tree items or PDML: the same labels, at about half the cost.
------------------------------------------------------------------------------
local out = {
    HEADER = "lblab-labels\t1", FOOTER = "lblab-labels-end",
    -- Values are the plugin's own text (packet bytes went through safe_text): only the
    -- line's separators and the escape character are escaped.
    ESCAPES = { ["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r" },
    PREFIX = {}, -- a ProtoField → "name=", its name in the line
    ITEM = {},  -- stands for every tree item while the labels are written
    items = {}, -- the frame being written: "name=value"
}
for name, field in pairs(pf) do out.PREFIX[field] = name .. "=" end

function out.text(v)
    local kind = type(v)
    if kind == "number" then
        if v == floor(v) then return sformat("%d", v) end
        return tostring(v)
    elseif kind == "boolean" then
        return v and "1" or "0"
    end
    v = tostring(v)
    if not sfind(v, "[\\\t\n\r]") then return v end
    return (sgsub(v, "[\\\t\n\r]", out.ESCAPES))
end

-- TreeItem.add's stand-in while writing: the item goes into the line.
function out.add(_, field, value)
    local prefix = out.PREFIX[field]
    if prefix ~= nil and value ~= nil then
        local items = out.items
        items[#items + 1] = prefix .. out.text(value)
    end
    return out.ITEM
end

function out.nothing() end

function out.time(frame)
    local secs, nsecs = frames.secs[frame], frames.nsecs[frame]
    if secs == nil then return "" end
    secs = secs % 4294967296 -- PDML prints (int)secs
    if secs >= 2147483648 then secs = secs - 4294967296 end
    return sformat("%d.%09d", secs, nsecs)
end

function out.line(frame)
    local items = out.items
    for i = #items, 1, -1 do items[i] = nil end
    if frames.pk[frame] ~= nil then
        local ok, err = pcall(label_frame, out.ITEM, frame, true, false, nil)
        if not ok then
            for i = 1, NLABELS do compact_labels[i] = nil end
            frames.error[frame] = frames.error[frame] or tostring(err)
        end
    end
    if frames.error[frame] then
        items[#items + 1] = "lua_error=" .. out.text("Lua Error: " .. frames.error[frame])
    end
    return frame .. "\t" .. out.time(frame) .. "\t" .. tconcat(items, "\t")
end

function out.write_all()
    local stdout = io.stdout
    stdout:write(out.HEADER, "\n")
    if state.roles_dirty then infer_roles() end
    if state.resolved_gen ~= state.record_gen then resolve() end
    local lines = {}
    for frame = 1, state.last_frame do
        lines[#lines + 1] = out.line(frame)
        if #lines == 512 then
            stdout:write(tconcat(lines, "\n"), "\n")
            lines = {}
        end
    end
    if #lines > 0 then stdout:write(tconcat(lines, "\n"), "\n") end
    stdout:write(out.FOOTER, "\t", state.last_frame, "\n")
end

function out.draw()
    local saved_add, saved_expert = tree_add, tree_add_expert
    tree_add, tree_add_expert, state.drawing = out.add, out.nothing, true
    local ok, err = pcall(out.write_all)
    tree_add, tree_add_expert, state.drawing = saved_add, saved_expert, false
    if not ok then io.stdout:write("\nlblab-labels-error\t", out.text(tostring(err)), "\n") end
    io.stdout:flush()
end

if register_stat_cmd_arg then
    register_stat_cmd_arg("lblab,labels", function()
        state.labels_wanted = true
        local tap = Listener.new("frame")
        tap.draw = out.draw
    end)
end

function lblab.dissector(tvb, pinfo, tree)
    if not state.labels_wanted then return record_and_label(tvb, pinfo, tree) end
    local frame = pinfo.number
    packet.note_time(frame)
    local ok, err = pcall(record_and_label, tvb, pinfo, tree)
    if not ok then
        frames.error[frame] = frames.error[frame] or tostring(err)
        error(err, 0)
    end
end
end


------------------------------------------------------------------------------
-- Every request's lifecycle in one table: the GUI's Tools > LB-Lab > Requests and
-- `tshark -q -z lblab,requests` (`,tsv` for tools). Built from the same tables as the
-- labels once the whole capture is read; the anomaly rules are lbreport's
-- (postproc/lbreport/lifecycle.py), and tests compare the two on every capture.
------------------------------------------------------------------------------
local summary = {}
do
-- The words, in English and Spanish. Anomaly sentences, step names and evidence words
-- are lbreport's catalogue's (postproc/lbreport/messages*.py; tests keep them equal).
summary.WORDS = {
    en = {
        title = "LB-Lab: requests", req = "#", client = "client", request = "request",
        status = "status", backend = "backend (evidence)", ttfb = "TTFB", total = "total",
        anomalies = "anomalies", none = "none", unknown = "unknown", cache = "the balancer's cache",
        capture_point = "Capture point", no_requests = "No request in this capture.",
        requests = "Requests", per_backend = "Requests per backend", statuses = "Status codes",
        order = "Backends in order", frames = "Frames",
        frames_line = "%d total = %d in requests + %d other",
        single_view = "Balance policies, latency percentiles and the ladder: lbreport report.",
        points = { balancer = "balancer (both legs)", client = "client view (front leg only)",
                   backend = "backend view (back leg only)",
                   ["no-balancer"] = "no balancer: nothing in this capture shows a load balancer",
                   unknown = "unknown" },
        anom = { ["no-response"] = "no response", ["missing-step"] = "missing step: {step}",
                 ["repeated-step"] = "repeated step: {step} ×{count}",
                 rst = "connection reset (RST): {src}→{dst}",
                 retransmission = "retransmission: {count} frame(s)",
                 ["http-5xx"] = "server error: HTTP {status}",
                 ["upstream-5xx"] = "a backend answered HTTP {status} ({backend})",
                 failover = "failover between backends: {path}",
                 ["no-upstream"] = "no upstream request from M3 in the capture" },
        evidence = { ["back-leg"] = "back-leg", marker = "marker", arp = "arp", none = "none", cache = "cache" },
        steps = {},
        go = "Filter request...", go_label = "Request number",
    },
    es = {
        title = "LB-Lab: peticiones", req = "#", client = "cliente", request = "petición",
        status = "estado", backend = "servidor final (evidencia)", ttfb = "TTFB", total = "total",
        anomalies = "anomalías", none = "ninguna", unknown = "desconocido",
        cache = "la caché del balanceador",
        capture_point = "Punto de captura", no_requests = "Ninguna petición en esta captura.",
        requests = "Peticiones", per_backend = "Peticiones por servidor final",
        statuses = "Códigos de estado", order = "Servidores finales en orden", frames = "Tramas",
        frames_line = "%d en total = %d en peticiones + %d otras",
        single_view = "Políticas de balanceo, percentiles de latencia y el diagrama: lbreport report.",
        points = { balancer = "balanceador (ambos tramos)", client = "vista del cliente (solo tramo frontal)",
                   backend = "vista de un servidor final (solo tramo trasero)",
                   ["no-balancer"] = "sin balanceador: nada en esta captura muestra un balanceador de carga",
                   unknown = "desconocido" },
        anom = { ["no-response"] = "sin respuesta", ["missing-step"] = "falta el paso: {step}",
                 ["repeated-step"] = "paso repetido: {step} ×{count}",
                 rst = "conexión abortada (RST): {src}→{dst}",
                 retransmission = "retransmisión: {count} trama(s)",
                 ["http-5xx"] = "error del servidor: HTTP {status}",
                 ["upstream-5xx"] = "un servidor final respondió HTTP {status} ({backend})",
                 failover = "el balanceador cambió de servidor final (failover): {path}",
                 ["no-upstream"] = "no aparece en la captura la petición de M3 a ningún servidor final" },
        evidence = { ["back-leg"] = "tramo interno", marker = "marca", arp = "ARP", none = "ninguna",
                     cache = "caché" },
        steps = {
            ["request"] = "petición", ["ACK-req"] = "ACK-petición", ["data"] = "datos",
            ["response"] = "respuesta", ["ACK-resp"] = "ACK-respuesta", ["FIN-client"] = "FIN-cliente",
            ["last-ACK"] = "ACK-final", ["up-request"] = "up-petición", ["up-ACK-req"] = "up-ACK-petición",
            ["up-data"] = "up-datos", ["up-response"] = "up-respuesta", ["up-ACK-resp"] = "up-ACK-respuesta",
            ["up-last-ACK"] = "up-ACK-final", ["up-FIN-backend"] = "up-FIN-servidor",
            ["FIN-backend"] = "FIN-servidor", ["TLS-close"] = "TLS-cierre", ["up-TLS-close"] = "up-TLS-cierre",
            ["interim"] = "provisional", ["up-interim"] = "up-provisional", ["FIN-server"] = "FIN-servidor",
        },
        go = "Filtrar petición...", go_label = "Número de petición",
    },
}

local REDIRECT = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }
local ONCE = { S.SYN, S.SYNACK, S.REQUEST, S.RESPONSE, S.FIN_A, S.FIN_B }

-- Missing and repeated steps on one leg (lifecycle._leg_anomalies).
function summary.leg_anomalies(counts, names, judge_response, pooled, out)
    local function has(step) return (counts[step] or 0) > 0 end
    local function missing(step) tinsert(out, { code = "missing-step", step = names[step] }) end
    local reset = has(S.RST)
    if has(S.SYN) and not has(S.SYNACK) and not reset then missing(S.SYNACK) end
    if has(S.SYNACK) and not has(S.SYN) then missing(S.SYN) end
    if has(S.SYN) and has(S.SYNACK) and not has(S.ACK) and not has(S.REQUEST) then missing(S.ACK) end
    if has(S.REQUEST) and not has(S.RESPONSE) then
        if judge_response then tinsert(out, { code = "no-response" }) else missing(S.RESPONSE) end
    end
    if has(S.RESPONSE) and not has(S.REQUEST) then missing(S.REQUEST) end
    if (has(S.FIN_A) or has(S.FIN_B)) and not reset then
        if not pooled then
            if not has(S.FIN_A) then missing(S.FIN_A) end
            if not has(S.FIN_B) then missing(S.FIN_B) end
        end
        if has(S.FIN_A) and has(S.FIN_B) and not has(S.LAST_ACK) then missing(S.LAST_ACK) end
    end
    for _, step in ipairs(ONCE) do
        if (counts[step] or 0) > 1 then
            tinsert(out, { code = "repeated-step", step = names[step], count = counts[step] })
        end
    end
end

-- One request's facts, gathered frame by frame.
function summary.new_row(front)
    return { front = front, first = nil, last = nil, front_counts = {}, back = {}, back_order = {},
             resets = {}, reset_order = {}, retrans = 0, up = {}, back_steps = false, names = nil }
end

function summary.note_frame(row, frame, t, c, step, h)
    if t then
        if row.first == nil or t < row.first then row.first = t end
        if row.last == nil or t > row.last then row.last = t end
    end
    if c == 0 then return end
    local leg, ra, rb = conn_roles(c)
    local rs, rd = ra, rb
    if step > FROM_B then step, rs, rd = step - FROM_B, rb, ra end
    if h ~= 0 and msg.merged[h] and (step == S.REQUEST or step == S.RESPONSE) then step = S.DATA end
    local retrans = has_bit(frames.flags[frame] or 0, FL.RETRANS)
    if retrans then row.retrans = row.retrans + 1 end
    if step == S.RST then
        local path = tostring(rs or "?") .. "\t" .. tostring(rd or "?")
        if not row.resets[path] then
            row.resets[path] = true
            tinsert(row.reset_order, { src = tostring(rs or "?"), dst = tostring(rd or "?") })
        end
    end
    if leg == LEG_FRONT then
        row.names = rb == ROLE_SERVER and SERVER_STEP or FRONT_STEP
        if not retrans then row.front_counts[step] = (row.front_counts[step] or 0) + 1 end
    elseif leg == LEG_BACK then
        row.back_steps = true
        local backend = tostring(rb or "?")
        local counts = row.back[backend]
        if counts == nil then counts = {}; row.back[backend] = counts; tinsert(row.back_order, backend) end
        if not retrans then counts[step] = (counts[step] or 0) + 1 end
        if step == S.RESPONSE and h ~= 0 and msg.resp_frame[h] == frame and not msg.encrypted[h] then
            tinsert(row.up, { backend, msg.status[h] })
        end
    end
end

-- Which legs the capture shows (lifecycle._capture_point).
function summary.capture_point(legs, backends)
    if #state.balancer_evidence == 0 then return "no-balancer" end
    if legs[LEG_FRONT] and legs[LEG_BACK] then return "balancer" end
    if legs[LEG_FRONT] then return "client" end
    if legs[LEG_BACK] then
        local names = {}
        for b in pairs(backends) do tinsert(names, b) end
        if #names == 1 then return names[1] end
        return "backend"
    end
    return "unknown"
end

function summary.status_of(row, point)
    local f = row.front
    local status = 0
    if conn_leg(msg.conn[f]) == LEG_FRONT and msg.resp_frame[f] ~= 0 and not msg.encrypted[f] then
        status = msg.status[f]
    end
    local sees_front = point == "balancer" or point == "client" or point == "no-balancer"
    if status == 0 and #row.up > 0 and (not sees_front or msg.encrypted[f]) then
        status = row.up[#row.up][2]
    end
    if status == 0 and not sees_front and msg.resp_frame[f] ~= 0 then status = msg.status[f] end
    return status
end

function summary.anomalies_of(row, point, status, evidence)
    local out = {}
    local sees_front = point == "balancer" or point == "client" or point == "no-balancer"
    if sees_front then summary.leg_anomalies(row.front_counts, row.names or FRONT_STEP, true, false, out) end
    if point ~= "client" and point ~= "unknown" and point ~= "no-balancer" then
        local by_balancer = evidence == EV.CACHE
            or (point == "balancer" and REDIRECT[status] and #row.up == 0 and not row.back_steps)
        if point == "balancer" and #row.back_order == 0 and not by_balancer then
            tinsert(out, { code = "no-upstream" })
        end
        for _, b in ipairs(row.back_order) do
            summary.leg_anomalies(row.back[b], BACK_STEP, not sees_front, true, out)
        end
        if #row.back_order > 1 then tinsert(out, { code = "failover", path = row.back_order }) end
    end
    for _, r in ipairs(row.reset_order) do tinsert(out, { code = "rst", src = r.src, dst = r.dst }) end
    if row.retrans > 0 then tinsert(out, { code = "retransmission", count = row.retrans }) end
    if status >= 500 then tinsert(out, { code = "http-5xx", status = status }) end
    for _, up in ipairs(row.up) do
        if up[2] >= 500 and (sees_front or up[2] ~= status) then
            tinsert(out, { code = "upstream-5xx", status = up[2], backend = up[1] })
        end
    end
    -- Once each, in order (as lbreport's dict.fromkeys).
    local seen, unique = {}, {}
    for _, a in ipairs(out) do
        local key = summary.contract(a)
        if not seen[key] then seen[key] = true; tinsert(unique, a) end
    end
    return unique
end

-- The requests of the capture read so far, with the frame times a listener collected.
function summary.build(times)
    if state.roles_dirty then infer_roles() end
    if state.resolved_gen ~= state.record_gen then resolve() end
    local rows, by_front, legs, backends = {}, {}, {}, {}
    local total, in_requests = 0, 0
    for frame, pk in pairs(frames.pk) do
        total = total + 1
        local c, step, h = unpack_frame(pk)
        local front = frames.req[frame]
        if front == nil then front = request_of_frame(frame, c, h); frames.req[frame] = front end
        if front ~= 0 then
            in_requests = in_requests + 1
            local row = by_front[front]
            if row == nil then row = summary.new_row(front); by_front[front] = row; tinsert(rows, row) end
            summary.note_frame(row, frame, times[frame], c, step, h)
            if c ~= 0 then
                local leg, _, rb = conn_roles(c)
                legs[leg] = true
                if leg == LEG_BACK and rb then backends[rb] = true end
            end
        end
    end
    tsort(rows, function(x, y) return msg.fidx[x.front] < msg.fidx[y.front] end)
    local point = summary.capture_point(legs, backends)
    for _, row in ipairs(rows) do
        local f = row.front
        row.index = msg.fidx[f]
        row.client = client_of(f) or ""
        row.method, row.uri = msg.method[f] or "", msg.uri[f] or ""
        if msg.encrypted[f] and msg.link[f] ~= 0 then
            row.method, row.uri = msg.method[msg.link[f]], msg.uri[msg.link[f]]
        end
        row.status = summary.status_of(row, point)
        local backend, evidence = compute_backend(f)
        row.backend, row.evidence = backend or "", EVIDENCE_NAME[evidence]
        if msg.resp_frame[f] ~= 0 and msg.resp_time[f] >= msg.time[f] then
            row.ttfb = msg.resp_time[f] - msg.time[f]
        end
        row.total = row.first and row.last - row.first or nil
        row.anomalies = summary.anomalies_of(row, point, row.status, evidence)
    end
    return { rows = rows, point = point, frames = total, in_requests = in_requests }
end

function summary.ms(seconds)
    if seconds == nil then return "-" end
    return sformat("%.3f ms", seconds * 1000)
end

-- An anomaly as lbreport's JSON writes it ("code" or "code: detail"), never translated.
function summary.contract(a)
    local detail = nil
    if a.code == "missing-step" then detail = a.step
    elseif a.code == "repeated-step" then detail = a.step .. " ×" .. a.count
    elseif a.code == "rst" then detail = a.src .. "→" .. a.dst
    elseif a.code == "retransmission" then detail = a.count .. " frame(s)"
    elseif a.code == "http-5xx" then detail = tostring(a.status)
    elseif a.code == "upstream-5xx" then detail = a.status .. " (" .. a.backend .. ")"
    elseif a.code == "failover" then detail = tconcat(a.path, " → ") end
    return detail and a.code .. ": " .. detail or a.code
end

-- An anomaly in the reader's language: the catalogue's sentence, step names translated.
function summary.anomaly_words(a, w)
    local values = {
        step = a.step and (w.steps[a.step] or a.step) or "", count = tostring(a.count or ""),
        status = tostring(a.status or ""), backend = a.backend or "", src = a.src or "",
        dst = a.dst or "", path = a.path and tconcat(a.path, " → ") or "",
    }
    return (sgsub(w.anom[a.code], "{(%w+)}", values))
end

function summary.backend_words(row, w)
    local evidence = w.evidence[row.evidence] or row.evidence
    if row.evidence == "cache" then return w.cache .. " (" .. evidence .. ")" end
    return (row.backend ~= "" and row.backend or w.unknown) .. " (" .. evidence .. ")"
end

-- Tab-separated, one line per request, for tools and tests (anomaly codes, not words).
function summary.tsv(result)
    local lines = { "req\tclient\tmethod\turi\tstatus\tbackend\tevidence\tttfb_ms\ttotal_ms\tanomalies" }
    for _, r in ipairs(result.rows) do
        local codes = {}
        for _, a in ipairs(r.anomalies) do tinsert(codes, summary.contract(a)) end
        tinsert(lines, tconcat({ r.index, r.client, r.method, r.uri, r.status ~= 0 and r.status or "",
            r.backend, r.evidence, r.ttfb and sformat("%.3f", r.ttfb * 1000) or "",
            r.total and sformat("%.3f", r.total * 1000) or "", tconcat(codes, "|") }, "\t"))
    end
    tinsert(lines, "# capture_point\t" .. result.point)
    tinsert(lines, sformat("# frames\t%d\t%d\t%d", result.frames, result.in_requests,
        result.frames - result.in_requests))
    return tconcat(lines, "\n") .. "\n"
end

-- Columns line up by characters, not bytes (UTF-8: "petición").
function summary.width(text)
    return #sgsub(text, "[\128-\191]", "")
end

function summary.pad(text, width)
    return text .. string.rep(" ", width - summary.width(text))
end

-- The table as a person reads it, in the preference's language.
function summary.text(result)
    local w = summary.WORDS[cfg.lang] or summary.WORDS.en
    local out = { w.title, w.capture_point .. ": " .. (w.points[result.point] or result.point), "" }
    if #result.rows == 0 then tinsert(out, w.no_requests) end
    local cells = {}
    for _, r in ipairs(result.rows) do
        local words = {}
        for _, a in ipairs(r.anomalies) do tinsert(words, summary.anomaly_words(a, w)) end
        tinsert(cells, { tostring(r.index), r.client, r.method .. " " .. r.uri,
            r.status ~= 0 and tostring(r.status) or "-", summary.backend_words(r, w),
            summary.ms(r.ttfb), summary.ms(r.total),
            #words > 0 and tconcat(words, "; ") or w.none })
    end
    local head = { w.req, w.client, w.request, w.status, w.backend, w.ttfb, w.total, w.anomalies }
    local widths = {}
    for i, h in ipairs(head) do widths[i] = summary.width(h) end
    for _, row in ipairs(cells) do
        for i = 1, 7 do widths[i] = math.max(widths[i], summary.width(row[i])) end
    end
    if #cells > 0 then
        local line = {}
        for i = 1, 7 do line[i] = summary.pad(head[i], widths[i]) end
        tinsert(out, tconcat(line, "  ") .. "  " .. head[8])
        for _, row in ipairs(cells) do
            for i = 1, 7 do line[i] = summary.pad(row[i], widths[i]) end
            tinsert(out, tconcat(line, "  ") .. "  " .. row[8])
        end
    end
    tinsert(out, "")
    local per, statuses, order = {}, {}, {}
    for _, r in ipairs(result.rows) do
        local b = r.evidence == "cache" and "cache" or (r.backend ~= "" and r.backend or w.unknown)
        per[b] = (per[b] or 0) + 1
        if r.status ~= 0 then statuses[r.status] = (statuses[r.status] or 0) + 1 end
        if r.backend ~= "" then tinsert(order, r.backend) end
    end
    local function counted(t)
        local keys = {}
        for k in pairs(t) do tinsert(keys, k) end
        tsort(keys, function(x, y) return tostring(x) < tostring(y) end)
        for i, k in ipairs(keys) do keys[i] = tostring(k) .. ": " .. t[k] end
        return tconcat(keys, ", ")
    end
    tinsert(out, w.requests .. ": " .. #result.rows)
    tinsert(out, w.per_backend .. ": " .. counted(per))
    tinsert(out, w.statuses .. ": " .. counted(statuses))
    if #order > 0 then tinsert(out, w.order .. ": " .. tconcat(order, " ")) end
    tinsert(out, w.frames .. ": " .. sformat(w.frames_line, result.frames, result.in_requests,
        result.frames - result.in_requests))
    tinsert(out, "")
    tinsert(out, w.single_view)
    return tconcat(out, "\n") .. "\n"
end

-- A listener that notes every frame's time (the tables keep none per frame).
function summary.frame_times()
    local times = {}
    local tap = Listener.new("frame")
    function tap.packet(pinfo) times[pinfo.number] = pinfo.abs_ts end
    function tap.reset() times = {} end
    return tap, function() return times end
end

-- tshark -q -z lblab,requests[,tsv]
if register_stat_cmd_arg then
    register_stat_cmd_arg("lblab,requests", function(arg)
        local tap, times = summary.frame_times()
        local tsv = arg ~= nil and sfind(arg, "tsv", 1, true) ~= nil
        function tap.draw()
            local result = summary.build(times())
            io.stdout:write(tsv and summary.tsv(result) or summary.text(result))
        end
    end)
end

-- Tools > LB-Lab > Requests (the GUI): the window, and a filter for one request.
if gui_enabled and gui_enabled() and register_menu then
    function summary.go_to_request()
        local w = summary.WORDS[cfg.lang] or summary.WORDS.en
        new_dialog(w.go, function(n)
            local index = tonumber(n)
            if index and index >= 1 and index == floor(index) then
                set_filter(sformat("lblab.req == %d", index))
                apply_filter()
            end
        end, w.go_label)
    end
    register_menu("LB-Lab/Requests", function()
        local tap, times = summary.frame_times()
        retap_packets()
        tap:remove()
        local result = summary.build(times())
        local w = summary.WORDS[cfg.lang] or summary.WORDS.en
        local window = TextWindow.new(w.title)
        window:set(summary.text(result))
        window:add_button(w.go, summary.go_to_request)
    end, MENU_TOOLS_UNSORTED)
    register_menu("LB-Lab/Go to request", summary.go_to_request, MENU_TOOLS_UNSORTED)
end
end

function lblab.init()
    reset_state()
end

function lblab.prefs_changed()
    parse_prefs()
    reset_state()
end

register_postdissector(lblab)
