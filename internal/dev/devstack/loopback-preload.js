// Written by `leasehold dev up` and loaded with `node -r` before a local
// server (kinesis-local). It forces every TCP listener of the process onto
// 127.0.0.1, whatever host the server asks for: kinesis-local binds
// 0.0.0.0 and has no setting to change that. http, https, http2 and tls
// servers all inherit net.Server.prototype.listen, so one patch covers them.
// Unix-socket and inherited-handle listeners are left alone.
'use strict';
const net = require('net');
const HOST = '127.0.0.1';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object') {
    // listen(options[, cb]); a handle object has no port to rebind.
    const isHandle = first._handle !== undefined || first.fd !== undefined || first.handle !== undefined;
    if (!isHandle && first.path === undefined) {
      args[0] = Object.assign({}, first, { host: HOST });
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb])
    if (typeof args[1] === 'string' || (args.length > 1 && (args[1] === undefined || args[1] === null))) {
      args[1] = HOST;
    } else {
      args.splice(1, 0, HOST);
    }
  } else if (first === undefined || typeof first === 'function') {
    // listen([cb]): a random port on all interfaces.
    args.splice(0, first === undefined ? 1 : 0, 0, HOST);
  }
  return listen.apply(this, args);
};

// A client that drops its connection in the middle of a request (a worker
// killed with SIGKILL, say) makes the request stream emit ECONNRESET with
// no listener; dynalite 4.0.0 then dies of an uncaught exception and takes
// every table with it. A real AWS endpoint shrugs that off, so the local
// one must too: connection-level errors are logged and ignored; anything
// else still ends the process as Node would.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNABORTED')) {
    console.error('leasehold preload: ignored a client connection error: ' + err.message);
    return;
  }
  console.error(err);
  process.exit(1);
});
