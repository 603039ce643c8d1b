#!/bin/bash
# docs_ai.sh - summaries from an OpenAI-compatible endpoint, and the
# fallback to the built-in summariser. The case starts a small
# chat-completions server of its own (python3 http.server on 127.0.0.1, a
# random port; the one stand-in allowed, for a paid service) and mounts
# with [processing] summarizer = openai, endpoint = it, timeout = 2. The
# server answers as it is told by a file: a proper completion (the document
# gets that summary, summary_source "openai"), HTTP 500, malformed JSON, a
# JSON answer without choices, and an answer that comes after 8 s: in each
# of those the document still completes, with a built-in summary of its own
# text (summary_source "builtin"), and the daemon logs why. The server sees
# the model, the document's text and "Authorization: Bearer KEY" when
# api_key is set (in the config, or DOCVAULT_AI_API_KEY), none without; the
# key never appears in the daemon's log.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dv_setup
if dv_mode_is_dir; then
	dv_note "dir mode: every check here needs the daemon"
	dv_done
fi
command -v python3 >/dev/null || dv_die "python3 is not installed (it runs the test endpoint)"

AI=$DV_DIR/ai
mkdir "$AI"
echo ok >"$AI/mode"
cat >"$AI/server.py" <<'PY'
"""A chat-completions endpoint for the test: behaves as the file mode says,
logs every request (one JSON object a line) to requests.log."""
import http.server
import json
import os
import sys
import time

STATE = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(os.path.join(STATE, "mode")) as f:
            mode = f.read().strip()
        rec = {"path": self.path, "mode": mode, "auth": self.headers.get("Authorization")}
        try:
            req = json.loads(body)
            rec["model"] = req.get("model")
            rec["text"] = req["messages"][-1]["content"]
        except Exception as e:  # noqa: BLE001 - logged for the test to see
            rec["bad_request"] = repr(e)
        words = rec.get("text", "").split()
        reply = "Endpoint summary: a document that begins with %s." % " ".join(words[:4])
        if mode == "ok":
            rec["reply"] = reply
        # logged as it arrives: the test reads it while a slow answer sleeps
        with open(os.path.join(STATE, "requests.log"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        if mode == "sleep":
            time.sleep(8)
        if mode == "500":
            status, out = 500, b'{"error": {"message": "internal error"}}'
        elif mode == "garbage":
            status, out = 200, b'{"choices": [{"message": {"content": "cut off'
        elif mode == "nochoices":
            status, out = 200, b'{"id": "x", "object": "chat.completion", "usage": {}}'
        else:
            out = json.dumps({"id": "chatcmpl-test", "object": "chat.completion",
                              "model": rec.get("model"),
                              "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": reply}}]})
            status, out = 200, out.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(os.path.join(STATE, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(STATE, "port.tmp"), os.path.join(STATE, "port"))
server.serve_forever()
PY
: >"$AI/requests.log"
python3 "$AI/server.py" "$AI" </dev/null >"$AI/server.log" 2>&1 &
ai_pid=$!
dv_on_exit "kill $ai_pid 2>/dev/null"
dv_private_reaper "kill $ai_pid"
for ((i = 0; i < 100; i++)); do
	[[ -s $AI/port ]] && break
	kill -0 "$ai_pid" 2>/dev/null || break
	sleep 0.1
done
[[ -s $AI/port ]] || dv_die "the test endpoint did not start: $(cat "$AI/server.log")"
port=$(cat "$AI/port")
dv_note "test endpoint at http://127.0.0.1:$port/v1 (pid $ai_pid)"

KEY=sk-dvtest-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
dv_conf_set processing summarizer openai
dv_conf_set processing endpoint "http://127.0.0.1:$port/v1"
dv_conf_set processing model docvault-test-model
dv_conf_set processing api_key "$KEY"
dv_conf_set processing timeout 2
dv_remount

# requests: the number of requests the endpoint has seen.
requests() { wc -l <"$AI/requests.log"; }
# last_request FIELD: that field of the last request (JSON null is "None").
last_request() {
	python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readlines()[-1]).get(sys.argv[2]))' \
		"$AI/requests.log" "$1"
}
# doc N TOPIC SENTENCES...: writes $DV_DIR/src/docN.txt.
mkdir "$DV_DIR/src"
doc() {
	local n=$1
	shift
	printf '%s\n' "$@" >"$DV_DIR/src/doc$n.txt"
}
doc 1 "Sourdough bread rises with wild yeast and lactic bacteria from a starter." \
	"The baker feeds the sourdough starter with flour and water every day." \
	"A long cold proof gives sourdough its sour taste and open crumb."
doc 2 "Honeybees dance to tell other bees where the flowers are." \
	"The waggle dance points the way to nectar relative to the sun."
doc 3 "Chess openings fight for the centre of the board." \
	"The queen's gambit offers a pawn to open lines for the pieces."
doc 4 "Coral reefs grow from the skeletons of tiny coral polyps." \
	"Warm water bleaches coral when the polyps expel their algae."
doc 5 "Bicycle gears let the rider keep a steady cadence on hills." \
	"A derailleur moves the chain between sprockets of the cassette."
doc 6 "Tea leaves are withered, rolled and oxidised to make black tea." \
	"Green tea is heated early, so its leaves do not oxidise."
doc 7 "Glassblowers gather molten glass on the end of a blowpipe." \
	"The glass is reheated in the glory hole between shaping steps."
doc 8 "Origami folds a single square of paper into a crane or a frog." \
	"Valley and mountain folds are the two basic origami folds."

# put N: copies docN.txt into the vault and waits until it is processed.
put() {
	local f=$MNT/doc$1.txt
	dv_assert_ok "cp doc$1.txt" cp "$DV_DIR/src/doc$1.txt" "$f"
	dv_docs_assert_done "doc$1.txt" 60 "$f"
	dv_assert_eq completed "$(dv_xattr "$f" user.docvault.status)" "doc$1.txt: status"
}
# assert_openai N: docN.txt has the endpoint's summary.
assert_openai() {
	local f=$MNT/doc$1.txt
	dv_assert_eq openai "$(dv_xattr "$f" user.docvault.summary_source)" "doc$1.txt: summary_source"
	dv_assert_eq "$(last_request reply)" "$(dv_xattr "$f" user.docvault.summary)" \
		"doc$1.txt: the summary is the endpoint's answer"
	dv_assert_match "doc$1.txt: the endpoint was sent the document's text" \
		"^$(head -n 1 "$DV_DIR/src/doc$1.txt")" "$(last_request text)"
	dv_assert_match "doc$1.txt: still has autotags from its text" '^[[:alnum:]]' \
		"$(dv_xattr "$f" user.docvault.autotags)"
}
# assert_fallback N MODE: docN.txt, summarised while the endpoint did MODE,
# has a built-in summary of its own text.
assert_fallback() {
	local f=$MNT/doc$1.txt
	dv_assert_eq builtin "$(dv_xattr "$f" user.docvault.summary_source)" "doc$1.txt ($2): summary_source"
	dv_docs_assert_from_text "doc$1.txt ($2)" text "$DV_DIR/src/doc$1.txt" "$f"
	dv_assert_eq "$2" "$(last_request mode)" "doc$1.txt: the endpoint was asked, and answered $2"
}

dv_note "the endpoint answers"
put 1
dv_assert_eq 1 "$(requests)" "one request to the endpoint"
dv_assert_eq /v1/chat/completions "$(last_request path)" "the request went to ENDPOINT/chat/completions"
dv_assert_eq docvault-test-model "$(last_request model)" "the request names the model"
dv_assert_eq "Bearer $KEY" "$(last_request auth)" "the request carries Authorization: Bearer KEY"
assert_openai 1

dv_note "HTTP 500"
echo 500 >"$AI/mode"
put 2
assert_fallback 2 500
dv_note "malformed JSON"
echo garbage >"$AI/mode"
put 3
assert_fallback 3 garbage
dv_note "JSON that is no chat completion"
echo nochoices >"$AI/mode"
put 4
assert_fallback 4 nochoices
dv_note "an answer after 8 s, past the timeout of 2 s"
echo sleep >"$AI/mode"
put 5
# (had the daemon waited for the answer, it would have been the endpoint's)
assert_fallback 5 sleep
dv_note "the endpoint answers again"
echo ok >"$AI/mode"
put 6
assert_openai 6
dv_assert_eq 6 "$(requests)" "one request per document"
log=$(cat "$DV_LOG")
dv_assert_match "the daemon logged the HTTP 500" 'HTTP 500; using the built-in summariser' "$log"
dv_assert_match "the daemon logged the malformed answers" \
	'not a chat completion.*using the built-in summariser' "$log"
dv_assert_match "the daemon logged the timeout" \
	"127\\.0\\.0\\.1:$port/v1/chat/completions: .*(time|Time).*using the built-in summariser" "$log"

dv_note "the key from DOCVAULT_AI_API_KEY"
KEY2=sk-dvtest-env-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
dv_conf_set processing api_key ""
DV_DAEMON_ENV=("DOCVAULT_AI_API_KEY=$KEY2")
dv_remount
put 7
assert_openai 7
dv_assert_eq "Bearer $KEY2" "$(last_request auth)" "the request carries the key from the environment"

dv_note "no key at all"
DV_DAEMON_ENV=()
dv_remount
put 8
assert_openai 8
dv_assert_eq None "$(last_request auth)" "no Authorization header without a key"

dv_unmount
logs=$(cat "$DV_LOG.all" "$DV_LOG" 2>/dev/null)
dv_assert_no_match "the config's key is not in the daemon's log" "$KEY" "$logs"
dv_assert_no_match "the environment's key is not in the daemon's log" "$KEY2" "$logs"
dv_done
