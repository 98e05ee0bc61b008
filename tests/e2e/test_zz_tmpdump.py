import json, uuid
from tests.e2e.conftest import ROOT, start_local

def test_dump(tmp_path_factory):
    gen = start_local(tmp_path_factory, SIGNOFF_TEAMS="1", SIGNOFF_ROUTING=str(ROOT / "tests/e2e/routing-teams.yaml"))
    s = next(gen)
    body = json.loads((ROOT / "events/api/checkpoint-hard.json").read_text())
    body["risk"]["data_sensitivity"] = "internal"
    r = s.call("POST", "/v1/checkpoints", body, {"Idempotency-Key": str(uuid.uuid4())})
    print(r.status, r.body)
    import time; time.sleep(4)
    st = s.call("GET", "/sandbox/api/state").body
    open("/tmp/tdump/state.json", "w").write(json.dumps(st, indent=1))
    t = st["teams"]
    conv = "19:release@thread.tacv2"
    acts = t["conversations"].get(conv) or next(iter(t["conversations"].values()))
    a = acts[0]
    for who in ("alice@example.com", "carol@example.com"):
        verb = a["verbs"][0] if a["verbs"] else "approve"
        r = s.call("POST", "/sandbox/api/teams/click", {"person": who, "conversation": conv, "activity_id": a["id"], "verb": "approve", "data": {"comment": "ok fine"}})
        open(f"/tmp/tdump/click-{who}.json", "w").write(json.dumps(r.body, indent=1))
    st = s.call("GET", "/sandbox/api/state").body
    open("/tmp/tdump/state2.json", "w").write(json.dumps(st, indent=1))
    try: next(gen)
    except StopIteration: pass
