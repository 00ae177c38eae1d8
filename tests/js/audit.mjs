#!/usr/bin/env node
// Runs graphql-http's GraphQL-over-HTTP conformance audit against a server.
//
//   node tests/js/audit.mjs http://127.0.0.1:8000/graphql [--fail-on=notice|warn|error]
//
// Prints one JSON line per audit result:
//   {"type":"result","id":...,"name":...,"status":"ok"|"notice"|"warn"|"error","reason":...}
// (failing results also carry "httpStatus", "contentType" and a truncated "body"),
// then one summary line:
//   {"type":"summary","total":N,"ok":N,"notice":N,"warn":N,"error":N,"failOn":...,"passed":bool}
//
// graphql-http's statuses: "error" = a MUST is violated, "warn" = a SHOULD is
// violated, "notice" = a MAY/recommendation is not followed. Quiver's
// requirement is "every audit ok", so by default (--fail-on=notice) any
// non-ok result makes the exit code 1. Use --fail-on=warn or --fail-on=error
// to tolerate the lower levels. Exit code 2 means the audit itself could not run.
import { auditServer } from 'graphql-http';

const LEVELS = { notice: 1, warn: 2, error: 3 };

function parseArgs(argv) {
  let url = process.env.QUIVER_GRAPHQL_URL ?? null;
  let failOn = 'notice';
  for (const arg of argv) {
    if (arg.startsWith('--fail-on=')) {
      failOn = arg.slice('--fail-on='.length);
      if (!(failOn in LEVELS)) {
        throw new Error(`--fail-on must be one of ${Object.keys(LEVELS).join(', ')}`);
      }
    } else if (!arg.startsWith('--')) {
      url = arg;
    } else {
      throw new Error(`unknown option ${arg}`);
    }
  }
  if (!url) {
    throw new Error('usage: audit.mjs <graphql-url> [--fail-on=notice|warn|error]');
  }
  return { url, failOn };
}

async function describeResponse(response) {
  if (!response) return {};
  const out = { httpStatus: response.status, contentType: response.headers.get('content-type') };
  try {
    const text = await response.clone().text();
    out.body = text.length > 500 ? `${text.slice(0, 500)}...` : text;
  } catch {
    // body already consumed by the audit; status + content type are enough.
  }
  return out;
}

async function main() {
  const { url, failOn } = parseArgs(process.argv.slice(2));
  const results = await auditServer({ url });
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  let failed = false;
  for (const result of results) {
    counts[result.status] = (counts[result.status] ?? 0) + 1;
    const line = { type: 'result', id: result.id, name: result.name, status: result.status };
    if (result.status !== 'ok') {
      line.reason = result.reason;
      Object.assign(line, await describeResponse(result.response));
      if (LEVELS[result.status] >= LEVELS[failOn]) failed = true;
    } else {
      line.reason = null;
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
  if (results.length === 0) failed = true;
  const summary = { type: 'summary', url, total: results.length, ...counts, failOn, passed: !failed };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`audit.mjs: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 2;
});
