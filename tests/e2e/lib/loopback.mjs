// Preload (`node --import <this file> server.js`) that keeps a server on the loopback interface:
// every TCP listen on a port (number, numeric string, omitted, or an options object with `port`)
// is bound to 127.0.0.1, whatever host the program asked for. Unix sockets, fds and handles are
// left alone.
//
// Used for @modelcontextprotocol/server-everything in streamableHttp mode, whose express
// `app.listen(PORT)` would otherwise bind every interface.
import net from 'node:net';

const HOST = process.env.AIP_E2E_LOOPBACK_HOST || '127.0.0.1';
const origListen = net.Server.prototype.listen;

const isPortLike = (v) =>
  v === undefined || v === null ||
  (typeof v === 'number' && Number.isInteger(v)) ||
  (typeof v === 'string' && /^\s*\d+\s*$/.test(v));

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const a0 = args[0];
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  let opts = null;
  if (a0 && typeof a0 === 'object') {
    // listen(options[, cb]); a handle/fd/path is not a TCP port: leave it
    if (a0.path === undefined && a0.fd === undefined && a0.handle === undefined && !a0._handle) {
      opts = { ...a0, host: HOST };
      delete opts.ipv6Only;
    }
  } else if (isPortLike(a0)) {
    // listen([port[, host[, backlog]]]) or listen(port, backlog): Node reads the backlog from
    // the second or third argument, whichever is a number
    const backlog = typeof args[1] === 'number' ? args[1] : typeof args[2] === 'number' ? args[2] : undefined;
    opts = { port: a0 === undefined || a0 === null ? 0 : Number(a0), host: HOST };
    if (backlog !== undefined) opts.backlog = backlog;
  }
  if (!opts) return origListen.apply(this, cb ? [...args, cb] : args);
  if (process.env.AIP_E2E_LOOPBACK_TRACE) {
    process.stderr.write(`[loopback] listen(${JSON.stringify(args)}) -> ${JSON.stringify(opts)}\n`);
  }
  return cb ? origListen.call(this, opts, cb) : origListen.call(this, opts);
};
