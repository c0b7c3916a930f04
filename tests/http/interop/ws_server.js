// Node ws (Debian node-ws) as an echo server for our client: node ws_server.js deflate|plain
// Listens on 127.0.0.1, an ephemeral port, prints "PORT n", serves until killed.
const WebSocket = require('/usr/share/nodejs/ws');
const wss = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: process.argv[2] === 'deflate' });
wss.on('listening', () => console.log('PORT ' + wss.address().port));
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
