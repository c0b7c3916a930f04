// Node ws (Debian node-ws) as a client of our server: node ws_client.js URL deflate|plain
const WebSocket = require('/usr/share/nodejs/ws');
const [url, mode] = process.argv.slice(2);
const deflate = mode === 'deflate';
const ws = new WebSocket(url, { perMessageDeflate: deflate });
const msgs = ['hello', 'h\u00e9llo \u2603 \u{1F600}', 'abc'.repeat(50000), Buffer.alloc(70000, 7), Buffer.alloc(0)];
let i = 0;
function next() { ws.send(msgs[i], { binary: typeof msgs[i] !== 'string' }); }
ws.on('open', () => {
  if (deflate !== (ws.extensions || '').includes('permessage-deflate')) { console.log('bad extensions ' + ws.extensions); process.exit(1); }
  next();
});
ws.on('message', (data, isBinary) => {
  const want = msgs[i];
  const ok = typeof want === 'string' ? (!isBinary && data.toString() === want) : (isBinary && Buffer.compare(data, want) === 0);
  if (!ok) { console.log('bad echo ' + i); process.exit(1); }
  if (++i < msgs.length) next(); else ws.ping('ping!');
});
ws.on('pong', (data) => { if (data.toString() === 'ping!') ws.close(1000, 'done'); });
ws.on('close', (code) => { console.log(code === 1000 ? 'ok' : 'close ' + code); process.exit(code === 1000 ? 0 : 1); });
ws.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
