// The Node peer of tulipa-chat for bench/chat/run.sh: a small idiomatic chat on Node's `ws` (Debian node-ws, pure
// JavaScript, no permessage-deflate, as tulipa-chat's default) and `net`, with what chat_load uses of the chat:
// rooms, "/join ROOM", and every other line (or WebSocket message) said in the room and delivered to each member,
// the sender included: a JSON object to a WebSocket, "12:34:56 #room <nick> text" to a TCP client. A joiner is told
// its room and how many are in it; joins are not announced (as tulipa-chat in rooms above 100 members).
//   node node_chat.js TCP_PORT WS_PORT        prints "ready" once both listen on 127.0.0.1
let ws;
try { ws = require('ws'); } catch { ws = require('/usr/share/nodejs/ws'); }  // Debian's place
const net = require('net');

const rooms = new Map();  // name -> Set of members
let guests = 0;

function join(m, room) {
  if (m.room !== null) {
    const old = rooms.get(m.room);
    old.delete(m);
    if (old.size === 0) rooms.delete(m.room);
  }
  m.room = room;
  let r = rooms.get(room);
  if (!r) rooms.set(room, (r = new Set()));
  r.add(m);
  m.notice({ type: 'members', room, count: r.size }, `* in #${room} (${r.size})`);
}

function say(m, text) {
  const msg = { type: 'message', time: Date.now(), room: m.room, nick: m.nick, text };
  let json = null, line = null;  // each format made once per message
  for (const o of rooms.get(m.room)) {
    if (o.ws) o.ws.send(json ??= JSON.stringify(msg));
    else o.sock.write(line ??= `${new Date(msg.time).toISOString().slice(11, 19)} #${m.room} <${m.nick}> ${text}\n`);
  }
}

function receive(m, text) {
  if (text.startsWith('/join ')) join(m, text.slice(6).trim().toLowerCase());
  else if (text.trim()) say(m, text);
}

function leave(m) {
  const r = rooms.get(m.room);
  if (r) { r.delete(m); if (r.size === 0) rooms.delete(m.room); }
}

const wss = new ws.WebSocketServer({ host: '127.0.0.1', port: +process.argv[3], backlog: 4096, perMessageDeflate: false });
wss.on('connection', (sock) => {
  const m = { ws: sock, nick: `guest-${++guests}`, room: null, notice: (o) => sock.send(JSON.stringify(o)) };
  join(m, 'lobby');
  sock.on('message', (data, isBinary) => { if (!isBinary) receive(m, data.toString()); });
  sock.on('close', () => leave(m));
  sock.on('error', () => {});
});

const tcp = net.createServer((sock) => {
  const m = { sock, nick: `guest-${++guests}`, room: null, notice: (o, text) => sock.write(text + '\n') };
  join(m, 'lobby');
  let partial = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const l of lines) receive(m, l.endsWith('\r') ? l.slice(0, -1) : l);
  });
  sock.on('close', () => leave(m));
  sock.on('error', () => {});
});

let listening = 0;
const ready = () => { if (++listening === 2) console.log('ready'); };
wss.on('listening', ready);
tcp.listen({ host: '127.0.0.1', port: +process.argv[2], backlog: 4096 }, ready);
