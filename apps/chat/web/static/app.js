// tulipa chat's page: plain JS, no build step. The server sends JSON lines (one event per line, several lines per
// WebSocket message); we send text lines (messages and /commands). Every user string is put in the page with
// textContent, never as HTML. On a lost connection the page reconnects by itself, asking for its nick, its room and
// only the messages after the last id it saw (no gap, and ids it already has are dropped: no duplicate).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { nick: "", room: "", lastId: {}, members: [], ws: null, retry: 500 };

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function add(li) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.appendChild(li);
  while (list.children.length > 1000) list.removeChild(list.firstChild);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function line(cls, text, time) {
  const li = el("li", cls);
  if (time) li.appendChild(el("span", "time", clock(time)));
  li.appendChild(document.createTextNode(text));
  add(li);
}

function showMessage(m) {
  if (m.id <= (state.lastId[m.room] || 0)) return;  // already shown (a reconnect's catch-up)
  state.lastId[m.room] = m.id;
  const li = el("li", m.nick === state.nick ? "own" : "");
  li.dataset.id = m.id;
  li.appendChild(el("span", "time", clock(m.time)));
  if (m.action) {
    li.appendChild(document.createTextNode("* " + m.nick + " " + m.text));
  } else {
    li.appendChild(el("span", "nick", m.nick));
    li.appendChild(document.createTextNode(m.text));
  }
  add(li);
}

function renderMembers() {
  const ul = $("members");
  ul.replaceChildren(...state.members.slice().sort().map((n) => el("li", n === state.nick ? "current" : "", n)));
  // A big room sends a part of its list (and announces no joins or leaves): say how many more there are.
  if (state.count > state.members.length) ul.appendChild(el("li", "", "and " + (state.count - state.members.length) + " more"));
}

function setRoom(room) {
  if (room === state.room) return;
  state.room = room;
  $("room").textContent = "#" + room;
  $("messages").replaceChildren();
  state.lastId[room] = 0;
  send("/rooms");
}

function handle(e) {
  switch (e.type) {
    case "message": showMessage(e); break;
    case "you_are": state.nick = e.nick; renderMembers(); break;
    case "members": setRoom(e.room); state.members = e.names; state.count = e.count; renderMembers(); break;
    case "joined":
      if (e.nick !== state.nick) { state.members.push(e.nick); renderMembers(); line("server", e.nick + " joined"); }
      break;
    case "left":
      state.members = state.members.filter((n) => n !== e.nick); renderMembers();
      line("server", e.nick + " left" + (e.text ? " (" + e.text + ")" : ""));
      break;
    case "renamed":
      state.members = state.members.map((n) => (n === e.nick ? e.other : n)); renderMembers();
      line("server", e.nick + " is now " + e.other);
      break;
    case "rooms":
      $("rooms").replaceChildren(...e.rooms.map((r) => {
        const li = el("li", r.name === state.room ? "current" : "", "#" + r.name + " (" + r.members + ")");
        li.addEventListener("click", () => send("/join " + r.name));
        return li;
      }));
      break;
    case "private_in": line("private", "[" + e.nick + " → you] " + e.text, e.time); break;
    case "private_out": line("private", "[you → " + e.nick + "] " + e.text, e.time); break;
    case "history": add(el("li", "divider", "earlier messages")); break;
    case "error": line("error", e.text); break;
    default: if (e.text) line("server", e.text);
  }
}

function send(text) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(text);
}

function connect() {
  const params = new URLSearchParams();
  if (state.nick && !state.nick.startsWith("guest-")) params.set("nick", state.nick);
  if (state.room) params.set("room", state.room);
  if (state.room && state.lastId[state.room]) params.set("after", String(state.lastId[state.room]));
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws?" + params);
  state.ws = ws;
  ws.onopen = () => { $("status").textContent = "connected"; $("status").className = "status ok"; state.retry = 500; };
  ws.onmessage = (msg) => {
    for (const text of String(msg.data).split("\n")) {
      if (text) handle(JSON.parse(text));
    }
  };
  ws.onclose = () => {
    $("status").textContent = "reconnecting…"; $("status").className = "status";
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 10000);
  };
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("input").value;
  if (text.trim()) send(text);
  $("input").value = "";
});
$("toggle").addEventListener("click", () => $("side").classList.toggle("open"));
connect();
