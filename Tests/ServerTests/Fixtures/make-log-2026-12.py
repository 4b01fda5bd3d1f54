#!/usr/bin/env python3
"""Makes log-2026-12/: a data directory written by the runlog of early December 2026 (before the
storage seam and the module split), which CompatibilityTests opens and verifies with today's code.

Usage: make-log-2026-12.py RUNLOG-BINARY OUT-DIR. Drives `runlog serve` over HTTP through workflows,
versions, a rollout, runs (one with an Idempotency-Key), an event, lists, keys and a CSV import,
stops it, and keeps a compacted backup of the directory with what `runlog log verify` printed.
"""
import json, os, re, subprocess, sys, tempfile, time, urllib.request

binary, out = sys.argv[1], sys.argv[2]
data = tempfile.mkdtemp(prefix="runlog-fixture-")
os.chmod(data, 0o700)
key = subprocess.run([binary, "keys", "create", "--role", "admin", "--data-dir", data],
                     check=True, capture_output=True, text=True).stdout.split()[0]
server = subprocess.Popen([binary, "serve", "--data-dir", data, "--port", "0", "--log-level", "warning"],
                          stdout=subprocess.PIPE, text=True)
api = re.search(r"http://\S+", server.stdout.readline()).group(0)


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(api + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Authorization", "Bearer " + key)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request) as answer:
        text = answer.read()
        return json.loads(text) if text else None


definition = {
    "trigger": {"kind": "api", "schema": {"fields": [
        {"name": "email", "type": "string", "required": True},
        {"name": "amount", "type": "number", "required": True}]}},
    "routes": [
        {"name": "big", "condition": {"parameters.amount": {"$gt": 100}},
         "steps": [{"step_uid": "seen", "type": "add_to_list",
                    "parameters": {"list": "big-spenders", "path": "parameters.email"}},
                   {"step_uid": "ok", "type": "approve"}]},
        {"name": "rest", "steps": [{"step_uid": "no", "type": "decline"}]}],
}
workflow = call("POST", "/v1/workflows", {"name": "Screening"})["id"]
call("PUT", f"/v1/workflows/{workflow}/draft", definition, {"If-Match": '"0"'})
call("POST", f"/v1/workflows/{workflow}/versions", {"description": "first", "activate": True})
for n in range(6):
    call("POST", f"/v1/workflows/{workflow}/runs", {"parameters": {"email": f"u{n}@example.com", "amount": n * 50}},
         {"Idempotency-Key": "fixture-run-0"} if n == 0 else None)
definition["routes"][0]["condition"] = {"parameters.amount": {"$gt": 200}}
call("PUT", f"/v1/workflows/{workflow}/draft", definition, {"If-Match": '"1"'})
call("POST", f"/v1/workflows/{workflow}/versions", {"description": "stricter"})
call("PATCH", f"/v1/workflows/{workflow}/versions/1", {"description": "the first version"})
call("POST", f"/v1/workflows/{workflow}/rollout", {"version": 2, "percentage": 50})
for n in range(6, 16):
    call("POST", f"/v1/workflows/{workflow}/runs", {"parameters": {"email": f"u{n}@example.com", "amount": n * 25}})
call("POST", "/v1/keys", {"role": "service", "name": "fixture service"})
revoked = call("POST", "/v1/keys", {"role": "auditor", "name": "fixture auditor"})["id"]
call("DELETE", f"/v1/keys/{revoked}")

rows = os.path.join(data, "rows.csv")
with open(rows, "w") as f:
    f.write("email,amount\n" + "".join(f"i{n}@example.com,{'x' if n % 7 == 3 else n * 30}\n" for n in range(20)))
imported = subprocess.run([binary, "import", rows, "--workflow", workflow, "--server", api, "--key", key],
                          capture_output=True, text=True)
# Exit status 1: the run completed with errored rows (three amounts are not numbers), as meant.
assert imported.returncode in (0, 1) and ": completed" in imported.stdout, imported.stdout + imported.stderr
os.remove(rows)
# Until every run has finished.
for _ in range(200):
    runs = call("GET", f"/v1/workflows/{workflow}/runs?limit=100")["runs"]
    if runs and all(run["status"] == "completed" for run in runs):
        break
    time.sleep(0.1)
server.terminate()
server.wait()

verified = subprocess.run([binary, "log", "verify", "--data-dir", data], check=True, capture_output=True,
                          text=True).stdout.strip()
subprocess.run([binary, "backup", out, "--data-dir", data], check=True, capture_output=True)
# The log alone: LMDB makes its lock file again, and nothing in it is sealed.
for name in ("lock.mdb", "secret.key"):
    if os.path.exists(os.path.join(out, name)):
        os.remove(os.path.join(out, name))
if os.path.isdir(os.path.join(out, "uploads")) and not os.listdir(os.path.join(out, "uploads")):
    os.rmdir(os.path.join(out, "uploads"))
with open(os.path.join(out, "verify.txt"), "w") as f:
    f.write(verified + "\n")

print(verified)
