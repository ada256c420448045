#!/usr/bin/python3
"""Local Hugging Face Hub for tests and offline deploys (stdlib only).

Serves model repos from local directories (one directory per branch) through the
endpoints and headers the official huggingface_hub client uses:

  GET  /api/models/{repo}/revision/{rev}             -> {"id", "sha", "siblings", ...}
  GET  /api/models/{repo}/tree/{rev}[/{path}]?recursive=true[&cursor=N]
                                                     -> [{"type","oid","size","path","lfs"?}]
                                                        paginated via Link: <...>; rel="next"
  HEAD/GET /{repo}/resolve/{rev}/{path}              -> small files: 200 (+Range/206/416)
                                                        LFS files: 302 to the CDN port
  GET  http://127.0.0.1:{cdn_port}/lfs/{sha256}?repo=..&file=..   (Range/206/416)

Headers: X-Repo-Commit, ETag (git blob sha1, quoted), X-Linked-Etag (sha256, quoted),
X-Linked-Size, Content-Length, Location, Accept-Ranges, Content-Range; errors carry
X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound / GatedRepo and
X-Error-Message.

Usage:
  hub.py --repo ORG/NAME=main:/dir/a,gptq-4bit-32g-actorder_True:/dir/b [--repo ...]
         [--gated ORG/NAME] [--token hf_test_token] [--port 0] [--cdn-port 0]
         [--port-file FILE] [--page-size 1000] [--faults JSON]

Prints one JSON line {"port", "cdn_port", "endpoint"} on stdout once listening (and writes
it to --port-file atomically). Binds 127.0.0.1 only.

Control (main port):
  POST /_faults  {"faults": [FAULT, ...], "page_size": N}   replace faults (and page size)
  GET  /_faults                                             current faults (counts left)
  GET  /_log                                                request log (JSON list)
  POST /_log/clear                                          empty the log
FAULT = {"kind": "drop"|"stall"|"corrupt"|"status"|"trickle"|"traversal",
         "match": "<fnmatch glob on file path, default *>",
         "where": ["resolve","cdn","head","revision","tree"]  (default ["resolve","cdn"];
                  drop/corrupt/trickle only act on file bodies),
         "count": N (times it fires, -1 = always; default 1),
         "after_bytes": N (drop/stall: bytes sent before closing / going silent;
                        default half the body),
         "seconds": N (stall: silence before closing the connection; default 30),
         "code": 429|500|..., "retry_after": seconds (status),
         "bytes_per_sec": N (trickle)}
"""

import argparse
import fnmatch
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".model", ".bin", ".pt", ".pth", ".gguf", ".h5", ".onnx")
LFS_MIN_SIZE = 10 * 1024
CHUNK = 64 * 1024


def git_blob_sha1(path):
    h = hashlib.sha1()
    h.update(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FileEntry:
    def __init__(self, rel, full):
        self.path = rel
        self.full = full
        self.size = os.path.getsize(full)
        self.lfs = rel.endswith(LFS_SUFFIXES) or self.size >= LFS_MIN_SIZE
        if self.lfs:
            self.sha256 = sha256_file(full)
            pointer = ("version https://git-lfs.github.com/spec/v1\n"
                       "oid sha256:%s\nsize %d\n" % (self.sha256, self.size)).encode()
            self.pointer_size = len(pointer)
            self.oid = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
            self.etag = self.sha256
        else:
            self.sha256 = None
            self.oid = git_blob_sha1(full)
            self.etag = self.oid

    def tree_json(self):
        d = {"type": "file", "oid": self.oid, "size": self.size, "path": self.path}
        if self.lfs:
            d["lfs"] = {"oid": self.sha256, "size": self.size,
                        "pointerSize": self.pointer_size}
        return d


class Branch:
    def __init__(self, repo_id, name, directory):
        self.name = name
        self.files = {}
        for root, dirs, names in os.walk(directory):
            dirs.sort()
            for n in sorted(names):
                full = os.path.join(root, n)
                rel = os.path.relpath(full, directory).replace(os.sep, "/")
                if rel.startswith(".git/") or rel == ".git":
                    continue
                self.files[rel] = FileEntry(rel, full)
        h = hashlib.sha1()
        h.update(("%s\n%s\n" % (repo_id, name)).encode())
        for rel in sorted(self.files):
            h.update(("%s %s\n" % (rel, self.files[rel].oid)).encode())
        self.commit = h.hexdigest()

    def dirs(self):
        out = set()
        for rel in self.files:
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                out.add("/".join(parts[:i]))
        return out


class HubState:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.repos = {}  # repo_id -> {branch -> Branch}
        self.blobs = {}  # sha256 -> FileEntry
        self.gated = set(args.gated or [])
        self.tokens = set(args.token or ["hf_test_token"])
        self.page_size = args.page_size
        self.faults = []
        self.log = []
        for spec in args.repo or []:
            repo_id, _, branches = spec.partition("=")
            if not repo_id or not branches:
                raise SystemExit("bad --repo %r (want ORG/NAME=branch:/dir,...)" % spec)
            repo = self.repos.setdefault(repo_id, {})
            for item in branches.split(","):
                name, _, directory = item.partition(":")
                if not os.path.isdir(directory):
                    raise SystemExit("--repo %s: %r is not a directory" % (repo_id, directory))
                b = Branch(repo_id, name, directory)
                repo[name] = b
                for f in b.files.values():
                    if f.lfs:
                        self.blobs[f.sha256] = f
        if args.faults:
            self.faults = json.loads(args.faults).get("faults", [])

    def find_branch(self, repo_id, rev):
        branches = self.repos.get(repo_id, {})
        if rev in branches:
            return branches[rev]
        for b in branches.values():
            if b.commit == rev:
                return b
        return None

    def take_fault(self, where, path, kinds):
        """Returns (a copy of) the first armed fault matching, decrementing its count."""
        with self.lock:
            for f in self.faults:
                if f.get("kind") not in kinds:
                    continue
                default_where = ["resolve", "cdn"]
                if where not in f.get("where", default_where):
                    continue
                if not fnmatch.fnmatch(path or "", f.get("match", "*")):
                    continue
                count = f.get("count", 1)
                if count == 0:
                    continue
                if count > 0:
                    f["count"] = count - 1
                return dict(f)
        return None

    def has_traversal(self):
        with self.lock:
            return any(f.get("kind") == "traversal" and f.get("count", 1) != 0
                       for f in self.faults)

    def record(self, entry):
        with self.lock:
            self.log.append(entry)

    def update(self, entry, **kw):
        with self.lock:
            entry.update(kw)


def make_handler(state, role, ports):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "llama-test-hub/1.0"

        def log_message(self, fmt, *args):  # quiet
            pass

        # ---- helpers -------------------------------------------------------
        def _entry(self, kind, **kw):
            e = {"method": self.command, "path": self.path, "kind": kind,
                 "role": role, "range": self.headers.get("Range"),
                 "auth": self.headers.get("Authorization") is not None,
                 "status": None, "bytes_sent": 0, "offset": 0, "fault": None,
                 "aborted": False, "repo": None, "file": None, "t": time.time()}
            e.update(kw)
            return e

        def _send_json(self, code, obj, headers=None, entry=None):
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if entry is not None:
                entry["status"] = code
                entry["bytes_sent"] = 0 if self.command == "HEAD" else len(body)
                state.record(entry)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, code, error_code, message, entry, extra=None):
            headers = {"X-Error-Message": message}
            if error_code:
                headers["X-Error-Code"] = error_code
            if extra:
                headers.update(extra)
            self._send_json(code, {"error": message}, headers, entry)

        def _auth_check(self, repo_id, entry):
            if repo_id not in state.gated:
                return True
            auth = self.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else None
            if token is None:
                self._error(401, "GatedRepo",
                            "Access to model %s is restricted. You must have access to it "
                            "and be authenticated to access it. Please log in." % repo_id, entry)
                return False
            if token not in state.tokens:
                self._error(403, "GatedRepo",
                            "Access to model %s is restricted and you are not in the "
                            "authorized list." % repo_id, entry)
                return False
            return True

        def _status_fault(self, where, path, entry):
            f = state.take_fault(where, path, ("status",))
            if not f:
                return False
            code = int(f.get("code", 500))
            extra = {}
            if "retry_after" in f:
                extra["Retry-After"] = str(f["retry_after"])
            entry["fault"] = "status %d" % code
            self._error(code, None, "injected fault: HTTP %d" % code, entry, extra)
            return True

        def _split_repo(self, parts):
            # parts: path components after the prefix; repo ids are 1 or 2 components.
            if len(parts) >= 2 and "/".join(parts[:2]) in state.repos:
                return "/".join(parts[:2]), parts[2:]
            if parts and parts[0] in state.repos:
                return parts[0], parts[1:]
            if len(parts) >= 2:
                return "/".join(parts[:2]), parts[2:]
            return (parts[0] if parts else ""), []

        # ---- dispatch -------------------------------------------------------
        def do_HEAD(self):
            self._dispatch()

        def do_GET(self):
            self._dispatch()

        def do_POST(self):
            self._dispatch()

        def _dispatch(self):
            try:
                url = urllib.parse.urlsplit(self.path)
                raw_parts = [p for p in url.path.split("/") if p != ""]
                parts = [urllib.parse.unquote(p) for p in raw_parts]
                query = urllib.parse.parse_qs(url.query)
                if role == "cdn":
                    return self._cdn(parts, query)
                if parts[:1] == ["_faults"]:
                    return self._control_faults()
                if parts[:1] == ["_log"]:
                    return self._control_log(parts)
                if parts[:2] == ["api", "models"] and self.command in ("GET", "HEAD"):
                    return self._api(parts[2:], query)
                if "resolve" in parts and self.command in ("GET", "HEAD"):
                    i = parts.index("resolve")
                    return self._resolve(parts[:i], parts[i + 1:])
                self._error(404, None, "not found: %s" % url.path, self._entry("other"))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        # ---- control --------------------------------------------------------
        def _read_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _control_faults(self):
            if self.command == "POST":
                spec = json.loads(self._read_body() or b"{}")
                with state.lock:
                    state.faults = list(spec.get("faults", []))
                    if "page_size" in spec:
                        state.page_size = int(spec["page_size"])
            with state.lock:
                obj = {"faults": state.faults, "page_size": state.page_size}
            self._send_json(200, obj)

        def _control_log(self, parts):
            if self.command == "POST" and parts[1:2] == ["clear"]:
                self._read_body()
                with state.lock:
                    state.log = []
                return self._send_json(200, {"ok": True})
            with state.lock:
                body = json.dumps(state.log).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        # ---- API ------------------------------------------------------------
        def _api(self, parts, query):
            for op in ("revision", "tree"):
                if op in parts:
                    i = parts.index(op)
                    repo_id, rest = "/".join(parts[:i]), parts[i + 1:]
                    break
            else:
                repo_id, _ = self._split_repo(parts)
                op, rest = "info", ["main"]
            entry = self._entry(op, repo=repo_id)
            if repo_id not in state.repos:
                return self._error(404, "RepoNotFound", "Repository not found", entry)
            if not self._auth_check(repo_id, entry):
                return
            if self._status_fault(op, "", entry):
                return
            rev = rest[0] if rest else "main"
            branch = state.find_branch(repo_id, rev)
            if branch is None:
                return self._error(404, "RevisionNotFound",
                                   "Invalid rev id: %s" % rev, entry)
            if op in ("revision", "info"):
                return self._send_json(200, {
                    "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                    "id": repo_id, "modelId": repo_id, "sha": branch.commit,
                    "private": False, "gated": "manual" if repo_id in state.gated else False,
                    "siblings": [{"rfilename": p} for p in sorted(branch.files)],
                }, {"X-Repo-Commit": branch.commit}, entry)
            # tree
            prefix = "/".join(rest[1:])
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            items = []
            for d in sorted(branch.dirs()):
                items.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(),
                              "size": 0, "path": d})
            for rel in sorted(branch.files):
                items.append(branch.files[rel].tree_json())
            if state.has_traversal():
                items.append({"type": "file", "oid": "0" * 40, "size": 5,
                              "path": "../../../../escaped.txt"})

            def in_scope(p):
                if prefix:
                    if not p.startswith(prefix + "/"):
                        return False
                    p = p[len(prefix) + 1:]
                return recursive or "/" not in p
            items = [it for it in items if in_scope(it["path"])]
            if prefix and not items and prefix not in branch.dirs():
                return self._error(404, "EntryNotFound", "%s does not exist" % prefix, entry)
            cursor = int(query.get("cursor", ["0"])[0] or 0)
            with state.lock:
                page = max(1, state.page_size)
            chunk = items[cursor:cursor + page]
            headers = {"X-Repo-Commit": branch.commit}
            if cursor + page < len(items):
                q = dict((k, v[0]) for k, v in query.items())
                q["cursor"] = str(cursor + page)
                nxt = "http://127.0.0.1:%d%s?%s" % (
                    ports["main"], urllib.parse.urlsplit(self.path).path,
                    urllib.parse.urlencode(q))
                headers["Link"] = '<%s>; rel="next"' % nxt
            self._send_json(200, chunk, headers, entry)

        # ---- resolve --------------------------------------------------------
        def _resolve(self, repo_parts, rest):
            repo_id = "/".join(repo_parts)
            if repo_parts[:1] == ["models"]:
                repo_id = "/".join(repo_parts[1:])
            kind = "head" if self.command == "HEAD" else "resolve"
            path = "/".join(rest[1:])
            entry = self._entry(kind, repo=repo_id, file=path)
            if repo_id not in state.repos:
                return self._error(404, "RepoNotFound", "Repository not found", entry)
            if not self._auth_check(repo_id, entry):
                return
            if self._status_fault(kind, path, entry):
                return
            rev = rest[0] if rest else "main"
            branch = state.find_branch(repo_id, rev)
            if branch is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id: %s" % rev, entry)
            f = branch.files.get(path)
            if f is None:
                return self._error(404, "EntryNotFound",
                                   "%s does not exist on \"%s\"" % (path, rev), entry,
                                   {"X-Repo-Commit": branch.commit})
            common = {"X-Repo-Commit": branch.commit, "Accept-Ranges": "bytes",
                      "Vary": "Origin, Accept-Encoding"}
            if f.lfs:
                loc = "http://127.0.0.1:%d/lfs/%s?%s" % (
                    ports["cdn"], f.sha256,
                    urllib.parse.urlencode({"repo": repo_id, "file": path}))
                self.send_response(302)
                for k, v in common.items():
                    self.send_header(k, v)
                self.send_header("ETag", '"%s"' % f.oid)
                self.send_header("X-Linked-Etag", '"%s"' % f.sha256)
                self.send_header("X-Linked-Size", str(f.size))
                self.send_header("Location", loc)
                self.send_header("Content-Length", "0")
                entry["status"] = 302
                state.record(entry)
                self.end_headers()
                return
            self._send_file(f, kind, entry, common, {"ETag": '"%s"' % f.oid})

        # ---- CDN ------------------------------------------------------------
        def _cdn(self, parts, query):
            file = query.get("file", [""])[0]
            entry = self._entry("cdn", repo=query.get("repo", [""])[0], file=file)
            if len(parts) != 2 or parts[0] != "lfs" or parts[1] not in state.blobs:
                return self._error(404, None, "no such object", entry)
            if self.command == "GET" and self._status_fault("cdn", file, entry):
                return
            f = state.blobs[parts[1]]
            self._send_file(f, "cdn", entry, {"Accept-Ranges": "bytes"},
                            {"ETag": '"%s"' % f.sha256})

        def _send_file(self, f, where, entry, common, extra):
            size = f.size
            start, end = 0, size - 1
            rng = self.headers.get("Range")
            status = 200
            if rng:
                try:
                    unit, _, spec = rng.partition("=")
                    a, _, b = spec.partition("-")
                    if unit.strip() != "bytes" or "," in spec:
                        raise ValueError
                    if a == "":
                        start, end = max(0, size - int(b)), size - 1
                    else:
                        start = int(a)
                        end = min(int(b), size - 1) if b else size - 1
                except ValueError:
                    start, end = 0, size - 1
                    rng = None
            if rng:
                if start >= size or start > end:
                    return self._error(416, None, "Requested Range Not Satisfiable", entry,
                                       dict(common, **{"Content-Range": "bytes */%d" % size}))
                status = 206
            length = end - start + 1
            self.send_response(status)
            for k, v in common.items():
                self.send_header(k, v)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            fault = None
            if self.command == "GET":
                fault = state.take_fault(where, f.path, ("drop", "stall", "corrupt", "trickle"))
            entry["status"] = status
            entry["offset"] = start
            entry["fault"] = fault["kind"] if fault else None
            state.record(entry)
            self.end_headers()
            if self.command == "HEAD":
                return
            drop_at = None
            if fault and fault["kind"] in ("drop", "stall"):
                drop_at = int(fault.get("after_bytes", length // 2))
            rate = int(fault.get("bytes_per_sec", 0)) if fault and fault["kind"] == "trickle" else 0
            corrupt = fault is not None and fault["kind"] == "corrupt"
            sent = 0
            try:
                with open(f.full, "rb") as fh:
                    fh.seek(start)
                    while sent < length:
                        n = min(CHUNK if not rate else max(1, min(CHUNK, rate // 10)),
                                length - sent)
                        if drop_at is not None:
                            n = min(n, drop_at - sent)
                            if n <= 0:
                                break
                        data = fh.read(n)
                        if not data:
                            break
                        if corrupt and sent <= length // 2 < sent + len(data):
                            i = length // 2 - sent
                            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
                        # Counted before the write so the log is complete by the time
                        # the client has the bytes.
                        state.update(entry, bytes_sent=sent + len(data))
                        self.wfile.write(data)
                        sent += len(data)
                        if rate:
                            self.wfile.flush()
                            time.sleep(len(data) / float(rate))
                self.wfile.flush()
                if fault and fault["kind"] == "stall":
                    time.sleep(float(fault.get("seconds", 30)))
            except (BrokenPipeError, ConnectionResetError):
                state.update(entry, aborted=True)
                self.close_connection = True
            if drop_at is not None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", action="append", help="ORG/NAME=branch:/dir[,branch:/dir...]")
    p.add_argument("--gated", action="append", help="repo id that requires a token")
    p.add_argument("--token", action="append", help="accepted token (default hf_test_token)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cdn-port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--page-size", type=int, default=1000)
    p.add_argument("--faults", help='initial faults JSON: {"faults": [...]}')
    args = p.parse_args()
    state = HubState(args)
    ports = {}
    main_srv = Server(("127.0.0.1", args.port), make_handler(state, "main", ports))
    cdn_srv = Server(("127.0.0.1", args.cdn_port), make_handler(state, "cdn", ports))
    ports["main"] = main_srv.server_address[1]
    ports["cdn"] = cdn_srv.server_address[1]
    info = {"port": ports["main"], "cdn_port": ports["cdn"],
            "endpoint": "http://127.0.0.1:%d" % ports["main"],
            "repos": {r: {b: br.commit for b, br in bs.items()}
                      for r, bs in state.repos.items()}}
    for srv in (main_srv, cdn_srv):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    line = json.dumps(info)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(line + "\n")
        os.replace(tmp, args.port_file)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
