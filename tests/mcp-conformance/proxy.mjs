// A header-adding HTTP proxy on 127.0.0.1, for the conformance suite only: the suite's client
// sends no bearer token, and `aip serve` rightly refuses it, so this puts
// `Authorization: Bearer <token>` on every request and forwards everything else unchanged:
// method, path, every other header as received (Host and Origin included, so the gateway's
// DNS-rebinding checks see what the suite sent), the body, and the answer's status, headers and
// body, streamed chunk by chunk (SSE events reach the suite as the gateway writes them).
import http from 'node:http';

/** Starts the proxy in front of `target` (http://127.0.0.1:PORT/...); resolves to {url, close}. */
export function startAuthProxy(target, token) {
  const to = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const srv = http.createServer((req, res) => {
    // raw header pairs, in order and spelling; a client's own Authorization is replaced, never
    // sent twice (the gateway answers a doubled header with 400)
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() !== 'authorization') headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    headers.push('Authorization', `Bearer ${token}`);
    const up = http.request({
      host: to.hostname, port: to.port, method: req.method, path: req.url, headers, agent,
      setHost: false,
    }, (ures) => {
      res.writeHead(ures.statusCode, ures.statusMessage, ures.rawHeaders);
      res.flushHeaders();
      ures.pipe(res);
      ures.on('error', () => res.destroy());
    });
    up.on('error', (e) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(`proxy: ${e.message}\n`);
      } else {
        res.destroy();
      }
    });
    // the suite dropped the connection (e.g. it cancels an SSE stream): drop ours too, as the
    // gateway would see it without the proxy
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    req.pipe(up);
  });
  return new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${srv.address().port}${to.pathname}`,
        close: () => new Promise((r) => { srv.close(r); srv.closeAllConnections(); agent.destroy(); }),
      });
    });
  });
}
