// A tiny local HTTP server for the transport tests: it records every request that reaches it and
// answers with `handler`, which may also hang or cut the connection. (Outside test/, so that
// `node --test test/` does not run it as a test file.)
import { createServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';

/**
 * A `stub(handler)` that starts stubs and closes all of them after each test of the file or
 * `describe` block it is called in (pass that scope's `afterEach`).
 * @param {(fn: () => Promise<void>) => void} afterEach
 */
export function stubsClosedAfterEach(afterEach) {
  let stubs = [];
  afterEach(async () => {
    await Promise.all(stubs.map((s) => s.close()));
    stubs = [];
  });
  return async (handler) => {
    const s = await startStub(handler);
    stubs.push(s);
    return s;
  };
}

/**
 * @param {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: string) => void} handler
 * @returns {Promise<{url: string, requests: {method: string, url: string, headers: object, body: string}[], close: () => Promise<void>}>}
 */
export async function startStub(handler) {
  const requests = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: { ...req.headers }, body });
      handler(req, res, body);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Answers JSON with the given status. */
export const json = (status, value) => (req, res) => {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
};

/** Never answers (the client must time out). */
export const hang = () => () => {};

/** Cuts the connection without an answer (a network error for the client). */
export const cut = () => (req) => {
  req.socket.destroy();
};

/** A port on 127.0.0.1 that nothing listens on (connections are refused). */
export async function closedPort() {
  const srv = createNetServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
