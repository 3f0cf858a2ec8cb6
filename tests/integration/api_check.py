#!/usr/bin/env python3
"""api_check.py BASE_URL — the open API, route by route, against a running
heraldd (dev or a cluster's gateway). Env: ADMIN (a tenant-admin token),
APPCRED (the JSON `herald --admin app create` printed for an app with every
scope), NARROW (the same for an app with only the message scope).

Prints "ok - …" / "FAIL - …" lines and exits 1 on any failure. Checks:
every path of /api/v1/openapi.json answers (never 404/405/5xx for a
well-formed call), bad input on every route (no token, unknown field, wrong
type, missing required field, malformed JSON, a body over the cap), the
credentials exchange, scopes, and the main flows end to end."""
import json
import os
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1].rstrip("/")
fails = 0


def ok(m):
    print("ok   - " + m)


def bad(m):
    global fails
    fails += 1
    print("FAIL - " + m)


def call(method, path, body=None, token=None, raw=None, query=None, headers=None):
    url = BASE + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            st, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        st, text = e.code, e.read()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = {"_raw": text[:200]}
    return st, doc


def expect(name, got, status, errcode=None):
    st, doc = got
    if st == status and (errcode is None or doc.get("errcode") == errcode):
        ok(name)
        return doc
    bad("%s: HTTP %s %s (want %s errcode %s)" % (name, st, json.dumps(doc)[:300], status, errcode))
    return doc


ADMIN = os.environ["ADMIN"]
cred = json.loads(os.environ["APPCRED"])
narrow = json.loads(os.environ["NARROW"])

# ---- credentials ----------------------------------------------------------
d = expect("POST /token with the printed credentials", call("POST", "/api/v1/token", cred), 200, 0)
APP = d.get("access_token", "")
if d.get("expires_in") == 7200 and APP:
    ok("access token valid for 7200 s")
else:
    bad("access token: %r" % d)
wrong = dict(cred, secret="0" * 64)
expect("wrong secret: 401 UNAUTHORIZED", call("POST", "/api/v1/token", wrong), 401, 3)
expect("unknown app: 401", call("POST", "/api/v1/token", dict(cred, app="nosuch")), 401, 3)
expect("missing secret: 400 INVAL", call("POST", "/api/v1/token",
                                           {"tenant": cred["tenant"], "app": cred["app"]}), 400, 8)
expect("extra field: 400 INVAL", call("POST", "/api/v1/token", dict(cred, x=1)), 400, 8)
expect("malformed JSON: 400 PROTOCOL", call("POST", "/api/v1/token", raw=b'{"tenant":'), 400, 1)
expect("a JSON array body: 400 INVAL", call("POST", "/api/v1/token", raw=b'[1]'), 400, 8)
NAPP = call("POST", "/api/v1/token", narrow)[1].get("access_token", "")
expect("no token: 401", call("GET", "/api/v1/app/list"), 401, 3)
expect("a garbage token: 401", call("GET", "/api/v1/app/list", token="abc.def"), 401, 3)
expect("Authorization not Bearer: 401",
       call("GET", "/api/v1/app/list", headers={"Authorization": "Basic eA=="}), 401, 3)
expect("access_token in the query works", call("GET", "/api/v1/user/get",
                                                query={"userid": "alice", "access_token": APP}),
       200, 0)
d = expect("user/token mints a client token", call("POST", "/api/v1/user/token",
                                                    {"userid": "alice", "ttl": 600}, APP), 200, 0)
ALICE = d.get("token", "")
d = expect("user/token for bob", call("POST", "/api/v1/user/token", {"userid": "bob"}, ADMIN),
           200, 0)
BOB = d.get("token", "")
expect("an app mints no admin token", call("POST", "/api/v1/user/token",
                                           {"userid": "x", "admin": True}, APP), 403, 5)
expect("a narrow app may not mint tokens", call("POST", "/api/v1/user/token",
                                                {"userid": "x"}, NAPP), 403, 5)

# ---- directory ----------------------------------------------------------------
expect("department/create", call("POST", "/api/v1/department/create",
                                  {"id": "rd", "name": "R&D"}, APP), 200, 0)
expect("department/create child", call("POST", "/api/v1/department/create",
                                        {"id": "rd-fe", "name": "Frontend", "parentid": "rd"},
                                        APP), 200, 0)
d = expect("department/get", call("GET", "/api/v1/department/get", query={"id": "rd-fe"},
                                  token=APP), 200, 0)
if d.get("parentid") != "rd":
    bad("department/get parentid: %r" % d)
for u, dep in (("alice", "rd"), ("bob", "rd-fe"), ("carol", "rd")):
    expect("user/create " + u, call("POST", "/api/v1/user/create",
                                    {"userid": u, "kind": "internal", "name": u.title(),
                                     "title": "Engineer", "department": dep}, APP), 200, 0)
expect("user/create a customer", call("POST", "/api/v1/user/create",
                                      {"userid": "cust1", "kind": "external", "name": "Cu"},
                                      APP), 200, 0)
d = expect("department/get rd: its level", call("GET", "/api/v1/department/get",
                                               query={"id": "rd"}, token=APP), 200, 0)
if d.get("children") == ["rd-fe"] and d.get("users") == ["alice", "carol"]:
    ok("department rd: children [rd-fe], users [alice, carol]")
else:
    bad("department level: %r" % d)
d = expect("department/get without an id: the top", call("GET", "/api/v1/department/get",
                                                         token=APP), 200, 0)
ok("the top lists rd") if "rd" in d.get("children", []) else bad("top level: %r" % d)
expect("department/get of no such department: 404", call(
    "GET", "/api/v1/department/get", query={"id": "nodept"}, token=APP), 404, 6)
d = expect("user/get", call("GET", "/api/v1/user/get", query={"userid": "bob"}, token=APP),
           200, 0)
if d.get("department") != "rd-fe" or d.get("title") != "Engineer":
    bad("user/get: %r" % d)
expect("user/create with a bad kind: 400", call("POST", "/api/v1/user/create",
                                                {"userid": "z", "kind": "robot"}, APP), 400, 8)
expect("the narrow app may not change the directory", call(
    "POST", "/api/v1/user/create", {"userid": "z", "kind": "internal"}, NAPP), 403, 5)

# ---- messages -------------------------------------------------------------------
msg = {"touser": "alice|bob|nobody", "agentid": cred["app"], "msgtype": "text",
       "text": {"content": "Payroll is out"}, "enable_duplicate_check": 1}
d = expect("message/send (WeCom shape)", call("POST", "/api/v1/message/send", msg, APP), 200, 0)
if d.get("invaliduser") == "nobody" and d.get("sent") == 2:
    ok("message/send: invaliduser nobody, 2 sent")
else:
    bad("message/send answer: %r" % d)
d2 = expect("message/send again", call("POST", "/api/v1/message/send", msg, APP), 200, 0)
if d2.get("duplicate") is True and d2.get("msgid") == d.get("msgid"):
    ok("duplicate check: same msgid, duplicate true")
else:
    bad("duplicate check: %r vs %r" % (d2, d))
d = expect("message/send toparty", call("POST", "/api/v1/message/send",
                                        {"toparty": "rd|nodept", "agentid": cred["app"],
                                         "msgtype": "markdown",
                                         "markdown": {"content": "**all hands**"}}, APP), 200, 0)
if d.get("invalidparty") == "nodept" and d.get("sent") == 3:
    ok("toparty: rd and its sub-department reached (3), nodept invalid")
else:
    bad("toparty: %r" % d)
d = expect("message/send announce @all", call("POST", "/api/v1/message/send",
                                              {"touser": "@all", "agentid": cred["app"],
                                               "msgtype": "text", "announce": True,
                                               "text": {"content": "Office closed Friday"}},
                                              APP), 200, 0)
ANN = d.get("conv", "")
ok("announcement conversation " + ANN) if ANN else bad("announce: no conv: %r" % d)
expect("message/send as another app: 403", call("POST", "/api/v1/message/send",
                                                dict(msg, agentid="other"), APP), 403, 5)
expect("message/send bad msgtype: 400", call("POST", "/api/v1/message/send",
                                             dict(msg, msgtype="video"), APP), 400, 8)
expect("message/send without recipients: 400", call(
    "POST", "/api/v1/message/send", {"agentid": cred["app"], "msgtype": "text",
                                     "text": {"content": "x"}}, APP), 400, 8)
expect("message/send text with extra keys: 400", call(
    "POST", "/api/v1/message/send", dict(msg, text={"content": "x", "y": 1}), APP), 400, 8)

# ---- conversations and a user's messages ------------------------------------
expect("conversation/create", call("POST", "/api/v1/conversation/create",
                                   {"conv": "api-g1", "kind": "group",
                                    "members": ["bob", "carol"]}, ALICE), 200, 0)
d = expect("conversation/get", call("GET", "/api/v1/conversation/get", query={"conv": "api-g1"},
                                    token=ALICE), 200, 0)
if sorted(d.get("members", [])) != ["alice", "bob", "carol"]:
    bad("conversation/get members: %r" % d)
d = expect("conversation/send as alice", call("POST", "/api/v1/conversation/send",
                                              {"conv": "api-g1", "text": "hi all",
                                               "msgid": "c-1"}, ALICE), 200, 0)
seq = d.get("seq", 0)
d = expect("conversation/send retried with the msgid", call(
    "POST", "/api/v1/conversation/send", {"conv": "api-g1", "text": "hi all", "msgid": "c-1"},
    ALICE), 200, 0)
if d.get("seq") == seq and d.get("duplicate") is True:
    ok("the retry is the same message (seq %d)" % seq)
else:
    bad("retry: %r (seq %d)" % (d, seq))
d = expect("conversation/send urgent", call("POST", "/api/v1/conversation/send",
                                            {"conv": "api-g1", "text": "server down",
                                             "urgent": True}, ALICE), 200, 0)
useq = d.get("seq", 0)
d = expect("message/history", call("GET", "/api/v1/message/history",
                                   query={"conv": "api-g1", "limit": "10"}, token=BOB), 200, 0)
texts = [m.get("text") for m in d.get("messages", [])]
ok("history has both messages") if "hi all" in texts and "server down" in texts else \
    bad("history: %r" % d)
expect("message/read", call("POST", "/api/v1/message/read", {"conv": "api-g1", "seq": seq}, BOB),
       200, 0)
d = expect("message/receipts", call("GET", "/api/v1/message/receipts",
                                    query={"conv": "api-g1", "seq": str(seq)}, token=ALICE),
           200, 0)
if "bob" in d.get("read", []) and "carol" in d.get("unread", []):
    ok("receipts: bob read, carol not")
else:
    bad("receipts: %r" % d)
expect("message/urgent/confirm", call("POST", "/api/v1/message/urgent/confirm",
                                      {"conv": "api-g1", "seq": useq}, BOB), 200, 0)
d = expect("message/urgent", call("GET", "/api/v1/message/urgent",
                                  query={"conv": "api-g1", "seq": str(useq)}, token=ALICE),
           200, 0)
if "bob" in d.get("confirmed", []) and "carol" in d.get("pending", []):
    ok("urgent: bob confirmed, carol pending")
else:
    bad("urgent: %r" % d)
expect("message/recall", call("POST", "/api/v1/message/recall", {"conv": "api-g1", "seq": seq},
                              ALICE), 200, 0)
expect("conversation/members/add", call("POST", "/api/v1/conversation/members/add",
                                        {"conv": "api-g1", "members": "cust1"}, ALICE), 200, 0)
expect("conversation/members/remove", call("POST", "/api/v1/conversation/members/remove",
                                           {"conv": "api-g1", "members": ["cust1"]}, ALICE),
       200, 0)
d = expect("conversation/list", call("GET", "/api/v1/conversation/list", token=ALICE), 200, 0)
if any(c.get("conv") == "api-g1" for c in d.get("conversations", [])):
    ok("conversation/list has api-g1")
else:
    bad("conversation/list: %r" % d)
expect("history of a conversation not joined: 403", call(
    "GET", "/api/v1/message/history", query={"conv": "api-g1"}, token=NAPP), 403)

# ---- DND --------------------------------------------------------------------------
expect("dnd/on", call("POST", "/api/v1/dnd/on", {}, BOB), 200, 0)
d = expect("dnd/get", call("GET", "/api/v1/dnd/get", token=BOB), 200, 0)
ok("dnd on") if d.get("on") is True else bad("dnd/get: %r" % d)
expect("dnd/off", call("POST", "/api/v1/dnd/off", {}, BOB), 200, 0)

# ---- external contacts, tags, mass, transfer ----------------------------------
d = expect("externalcontact/add", call("POST", "/api/v1/externalcontact/add",
                                       {"userid": "alice", "external_userid": "cust1"}, ADMIN),
           200, 0)
ok("contact conversation " + d.get("conv", "")) if d.get("conv") else bad("contact: %r" % d)
d = expect("externalcontact/list", call("GET", "/api/v1/externalcontact/list",
                                        query={"external_userid": "cust1"}, token=ADMIN), 200, 0)
ok("owners [alice]") if d.get("owners") == ["alice"] else bad("owners: %r" % d)
expect("externalcontact/tag/add", call("POST", "/api/v1/externalcontact/tag/add",
                                       {"external_userid": "cust1", "tags": ["vip"]}, ADMIN),
       200, 0)
d = expect("externalcontact/tag/list", call("GET", "/api/v1/externalcontact/tag/list",
                                            query={"external_userid": "cust1"}, token=ADMIN),
           200, 0)
ok("tags [vip]") if d.get("tags") == ["vip"] else bad("tags: %r" % d)
d = expect("externalcontact/mass/send", call("POST", "/api/v1/externalcontact/mass/send",
                                             {"tags": ["vip"], "text": "sale!", "msgid": "m1"},
                                             ADMIN), 200, 0)
ok("mass reached cust1") if d.get("reached") == ["cust1"] else bad("mass: %r" % d)
d = expect("externalcontact/mass/result", call("GET", "/api/v1/externalcontact/mass/result",
                                               query={"msgid": "m1"}, token=ADMIN), 200, 0)
ok("mass result reached cust1") if d.get("reached") == ["cust1"] else bad("mass result: %r" % d)
expect("externalcontact/tag/remove", call("POST", "/api/v1/externalcontact/tag/remove",
                                          {"external_userid": "cust1", "tags": "vip"}, ADMIN),
       200, 0)
d = expect("resigned transfer", call("POST", "/api/v1/externalcontact/resigned/transfer_customer",
                                     {"handover_userid": "alice", "takeover_userid": "bob",
                                      "external_userid": ["cust1"]}, ADMIN), 200, 0)
cs = d.get("customers", [])
if cs and cs[0].get("external_userid") == "cust1" and cs[0].get("status") == "done":
    ok("resigned transfer: cust1 done")
else:
    bad("transfer: %r" % d)
d = expect("externalcontact/list after the transfer", call(
    "GET", "/api/v1/externalcontact/list", query={"external_userid": "cust1"}, token=ADMIN),
    200, 0)
ok("owners [bob]") if d.get("owners") == ["bob"] else bad("owners after: %r" % d)

# ---- apps, operations -----------------------------------------------------------
d = expect("app/list", call("GET", "/api/v1/app/list", token=ADMIN), 200, 0)
names = [a.get("app") for a in d.get("apps", [])]
ok("app/list has both apps") if cred["app"] in names and narrow["app"] in names else \
    bad("app/list: %r" % d)
expect("app/list by an app: 403", call("GET", "/api/v1/app/list", token=APP), 403, 5)
d = expect("app/create", call("POST", "/api/v1/app/create", {"app": "api-made",
                                                            "scopes": ["directory"]}, ADMIN),
           200, 0)
if len(d.get("secret", "")) == 64:
    expect("the new app logs in", call("POST", "/api/v1/token",
                                       {"tenant": d["tenant"], "app": d["app"],
                                        "secret": d["secret"]}), 200, 0)
else:
    bad("app/create: %r" % d)
expect("app/create again: 409 EXISTS", call("POST", "/api/v1/app/create", {"app": "api-made"},
                                            ADMIN), 409, 7)
d = expect("app/callback with event types", call("POST", "/api/v1/app/callback",
                                                  {"app": "api-made", "url": "https://x.example/cb",
                                                   "events": ["message.offline", "recall"]},
                                                  ADMIN), 200, 0)
ok("event_types as asked") if d.get("event_types") == ["recall", "message.offline"] and \
    d.get("all_types") is False else \
    bad("app/callback event_types: %r" % d)
d = expect("app/callback with \"a|b\" types", call("POST", "/api/v1/app/callback",
                                                   {"app": "api-made", "url": "https://x.example/cb",
                                                    "events": "message|receipt"}, ADMIN), 200, 0)
ok("event_types from a|b") if d.get("event_types") == ["message", "receipt"] else \
    bad("app/callback a|b: %r" % d)
d = expect("app/callback: an unknown event type: 400", call("POST", "/api/v1/app/callback",
           {"app": "api-made", "url": "https://x.example/cb", "events": ["messages"]}, ADMIN),
           400, 8)
ok("the error names it and lists the types") if "\"messages\" is no event type (one of: message," \
    in d.get("errmsg", "") else bad("unknown event type: %r" % d)
expect("app/callback: events not a list: 400", call("POST", "/api/v1/app/callback",
       {"app": "api-made", "url": "https://x.example/cb", "events": 7}, ADMIN), 400, 8)
d = expect("app/callback without url: 400", call("POST", "/api/v1/app/callback",
           {"app": "api-made", "events": ["message"]}, ADMIN), 400, 8)
ok("url is required") if "url is required" in d.get("errmsg", "") else bad("no url: %r" % d)
expect("app/callback removed", call("POST", "/api/v1/app/callback",
                                    {"app": "api-made", "url": ""}, ADMIN), 200, 0)
d = expect("cluster (admin)", call("GET", "/api/v1/cluster", token=ADMIN), 200, 0)
ok("cluster: mode %s, %d groups" % (d.get("mode"), len(d.get("groups", [])))) \
    if d.get("groups") else bad("cluster: %r" % d)

# ---- every route: answers, and refuses bad input ------------------------------
st, spec = call("GET", "/api/v1/openapi.json")
if st == 200 and spec.get("openapi", "").startswith("3."):
    ok("openapi.json: OpenAPI %s, %d paths" % (spec["openapi"], len(spec.get("paths", {}))))
else:
    bad("openapi.json: %s %r" % (st, spec))
for path, item in sorted(spec.get("paths", {}).items()):
    for method, op in item.items():
        m = method.upper()
        noauth = op.get("security") == []
        if path.endswith("openapi.json"):
            continue
        # Answers: a call with no arguments is a clear error or an answer.
        st, doc = call(m, path, {} if m == "POST" else None, None if noauth else ADMIN)
        if st in (404, 405) or st >= 500 or "errcode" not in doc:
            bad("%s %s answers: HTTP %s %r" % (m, path, st, doc))
        else:
            ok("%s %s answers (HTTP %s, errcode %s)" % (m, path, st, doc["errcode"]))
        if not noauth:
            st, doc = call(m, path, {} if m == "POST" else None)
            if st != 401 or doc.get("errcode") != 3:
                bad("%s %s without a token: %s %r" % (m, path, st, doc))
        if m == "POST":
            params = op["requestBody"]["content"]["application/json"]["schema"]["properties"]
            st, doc = call(m, path, {"no_such_field": 1}, None if noauth else ADMIN)
            if st != 400 or doc.get("errcode") != 8 or "no_such_field" not in doc.get("errmsg", ""):
                bad("%s %s unknown field: %s %r" % (m, path, st, doc))
            st, doc = call(m, path, raw=b"{not json", token=None if noauth else ADMIN)
            if st != 400 or doc.get("errcode") != 1:
                bad("%s %s malformed JSON: %s %r" % (m, path, st, doc))
            for name, sch in params.items():
                wrongv = {"string": 12, "integer": "x", "boolean": "yes", "array": 5,
                          "object": "s"}[sch["type"]]
                st, doc = call(m, path, {name: wrongv}, None if noauth else ADMIN)
                if st != 400 or name not in doc.get("errmsg", ""):
                    bad("%s %s %s of the wrong type: %s %r" % (m, path, name, st, doc))
        else:
            st, doc = call(m, path, None, ADMIN, query={"no_such_param": "1"})
            if st != 400 or doc.get("errcode") != 8:
                bad("%s %s unknown parameter: %s %r" % (m, path, st, doc))
        req = [p["name"] for p in op.get("parameters", []) if p.get("required")]
        if m == "POST":
            req = op["requestBody"]["content"]["application/json"]["schema"].get("required", [])
        for name in req:
            st, doc = call(m, path, {} if m == "POST" else None, None if noauth else ADMIN)
            if st != 400 or name not in doc.get("errmsg", ""):
                bad("%s %s without %s: %s %r" % (m, path, name, st, doc))
            break
ok("bad input checked on every route")
expect("unknown path: 404", call("GET", "/api/v1/nope", token=ADMIN), 404, 6)
expect("wrong method: 405", call("GET", "/api/v1/message/send", token=ADMIN), 405, 20)
sys.exit(1 if fails else 0)
