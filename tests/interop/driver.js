// Drives one node of the real Rust actr runtime (its published napi module) for the
// interop tests: tests/interop/peer.py spawns it and speaks JSON lines with it.
//
//   node driver.js <actr.*.node> <manifest.toml>
//
// On start it creates the node (ActrNode.fromFile registers it with the AIS), starts
// it and prints {"event": "ready", "actor": "<id text>"}. Then it reads one JSON
// command a line on stdin and answers each with a line carrying the same "id":
//   {"id": 1, "op": "discover", "type": "acme:echo:1.0", "count": 1}
//   {"id": 2, "op": "call", "target": "<id text>", "route": "...", "payload_type": 0,
//    "payload": "<base64>", "timeout_ms": 10000}
//   {"id": 3, "op": "tell", "target": "<id text>", "route": "...", "payload_type": 0,
//    "payload": "<base64>"}
//   {"id": 4, "op": "shutdown"}
// Answers: {"id": n, "ok": true, "result": ...} or {"id": n, "ok": false, "error": {...}}.
//
// actr's tracing logs go to stdout too, so every line of ours starts with PREFIX and
// the test ignores (and logs) the rest.
'use strict';

const readline = require('node:readline');

const PREFIX = '@interop ';

// The binding reports a failed call as an Error whose message is JSON naming the
// ActrError variant (bindings/typescript/src/error.rs); actr maps wire codes to
// variants one to one (core/hyper/src/lifecycle/node.rs, wire_code_to_actr_error),
// so the variant gives back the code the peer sent. Codes as in PROTOCOL.md.
const WIRE_CODES = {
  Unavailable: 10001,
  TimedOut: 10002,
  NotFound: 10003,
  PermissionDenied: 10004,
  InvalidArgument: 10005,
  UnknownRoute: 10006,
  DependencyNotFound: 10007,
  DecodeFailure: 10008,
  NotImplemented: 10009,
  Internal: 10010,
  ConnectionNotReady: 10011,
};

function emit(obj) {
  process.stdout.write(PREFIX + JSON.stringify(obj) + '\n');
}

// Our ActrId text form (PROTOCOL.md ID-1): <serial hex>@<realm>/<manufacturer>:<name>:<version>.
function idText(id) {
  const t = id.type;
  return `${id.serialNumber.toString(16)}@${id.realm.realmId}/${t.manufacturer}:${t.name}:${t.version}`;
}

function parseType(text) {
  const parts = text.split(':');
  if (parts.length !== 3) throw new Error(`bad actor type ${JSON.stringify(text)}`);
  return { manufacturer: parts[0], name: parts[1], version: parts[2] };
}

function parseId(text) {
  const m = /^([0-9a-f]+)@(\d+)\/(.+)$/.exec(text);
  if (!m) throw new Error(`bad actor id ${JSON.stringify(text)}`);
  return {
    realm: { realmId: Number(m[2]) },
    serialNumber: parseInt(m[1], 16),
    type: parseType(m[3]),
  };
}

function describeError(e) {
  const message = e && e.message !== undefined ? String(e.message) : String(e);
  let parsed = null;
  try {
    parsed = JSON.parse(message);
  } catch {
    // Not the binding's JSON payload (e.g. our own argument checks).
  }
  if (parsed && typeof parsed === 'object' && parsed.code) {
    return {
      name: parsed.code,
      kind: parsed.kind,
      code: WIRE_CODES[parsed.code] ?? null,
      message: parsed.message,
    };
  }
  return { name: null, kind: null, code: null, message };
}

async function handle(ref, cmd) {
  switch (cmd.op) {
    case 'discover': {
      const ids = await ref.discover(parseType(cmd.type), cmd.count ?? 1);
      return ids.map(idText);
    }
    case 'call': {
      const answer = await ref.call(
        parseId(cmd.target),
        cmd.route,
        cmd.payload_type ?? 0,
        Buffer.from(cmd.payload ?? '', 'base64'),
        cmd.timeout_ms ?? 10000,
      );
      return Buffer.from(answer).toString('base64');
    }
    case 'tell':
      await ref.tell(
        parseId(cmd.target),
        cmd.route,
        cmd.payload_type ?? 0,
        Buffer.from(cmd.payload ?? '', 'base64'),
      );
      return null;
    default:
      throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
  }
}

async function main() {
  const [modulePath, manifestPath] = process.argv.slice(2);
  if (!modulePath || !manifestPath) {
    process.stderr.write('usage: node driver.js <actr.*.node> <manifest.toml>\n');
    process.exit(2);
  }
  const actr = require(modulePath);
  let ref;
  try {
    const node = await actr.ActrNode.fromFile(manifestPath);
    ref = await node.start();
  } catch (e) {
    emit({ event: 'failed', error: describeError(e) });
    process.exit(1);
  }
  emit({ event: 'ready', actor: idText(ref.actorId()) });

  const inFlight = new Set();
  let stopping = false;
  const stop = async (id) => {
    if (stopping) return;
    stopping = true;
    ref.shutdown();
    await ref.waitForShutdown();
    if (id !== undefined) emit({ id, ok: true, result: null });
    process.exit(0);
  };
  // The test stops us with a shutdown command; SIGTERM (a test that failed) and the
  // end of stdin (the test process died) stop the node the same way.
  process.on('SIGTERM', () => void stop());

  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      emit({ id: null, ok: false, error: describeError(e) });
      return;
    }
    if (cmd.op === 'shutdown') {
      void stop(cmd.id);
      return;
    }
    // Commands run concurrently; each answer names its command's id.
    const done = handle(ref, cmd).then(
      (result) => emit({ id: cmd.id, ok: true, result }),
      (e) => emit({ id: cmd.id, ok: false, error: describeError(e) }),
    );
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  // Commands already read are answered before the node stops.
  lines.on('close', () => void Promise.allSettled([...inFlight]).then(() => stop()));
}

main();
