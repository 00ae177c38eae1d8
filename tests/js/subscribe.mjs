#!/usr/bin/env node
// Follows one GraphQL subscription with the `graphql-ws` client (graphql-transport-ws).
//
//   node tests/js/subscribe.mjs ws://127.0.0.1:8000/graphql '<subscription>' '<variables JSON>'
//
// The API key, if any, is read from QUIVER_TOKEN and sent in the connection_init payload.
// Prints one JSON line per result ({"type":"next","payload":{...}}), then
// {"type":"complete"} when the server completes the subscription, or
// {"type":"error","error":...} (exit code 1) when it fails.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, query, variablesJson] = process.argv.slice(2);
if (!url || !query) {
  console.error('usage: subscribe.mjs <ws-url> <query> [variables-json]');
  process.exit(2);
}
const token = process.env.QUIVER_TOKEN;

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: 0,
  connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
});

function print(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

client.subscribe(
  { query, variables: variablesJson ? JSON.parse(variablesJson) : {} },
  {
    next: (payload) => print({ type: 'next', payload }),
    error: (error) => {
      const detail = error instanceof Error ? error.message
        : Array.isArray(error) ? error
        : { code: error.code, reason: error.reason };
      print({ type: 'error', error: detail });
      client.dispose().finally(() => process.exit(1));
    },
    complete: () => {
      print({ type: 'complete' });
      client.dispose().finally(() => process.exit(0));
    },
  },
);
