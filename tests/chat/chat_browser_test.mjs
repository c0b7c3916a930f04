// The page in a real browser (playwright-core driving Debian's chromium) against the real tulipa-chat binary: two
// browser users and one TCP user chat in one room, one's own messages are marked, an XSS attempt shows as text,
// the history is there after a reload, and a phone-sized screenshot is kept as the test's artefact.
// Usage: node chat_browser_test.mjs TULIPA_CHAT_BINARY SCREENSHOT.png   (NODE_PATH finds playwright-core)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");
const [bin, screenshot] = process.argv.slice(2);
const tmp = mkdtempSync(path.join(os.tmpdir(), "tulipa-chat-browser-"));
const server = spawn(bin, ["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--store", `sqlite:${tmp}/chat.db`],
                     { stdio: ["ignore", "pipe", "inherit"] });
let browser;
const fail = (msg) => { throw new Error(msg); };
const watchdog = setTimeout(() => { console.error("chat_browser_test: watchdog (60 s)"); process.exit(1); }, 60000);

try {
  const out = await new Promise((resolve, reject) => {
    let text = "";
    server.stdout.on("data", (d) => { text += d; if (text.includes("browsers on ")) resolve(text); });
    server.on("exit", () => reject(new Error("the server exited: " + text)));
  });
  const tcpPort = Number(out.match(/line clients on 127\.0\.0\.1:(\d+)/)[1]);
  const url = out.match(/browsers on (http:\/\/\S+)/)[1];

  const tcp = net.connect(tcpPort, "127.0.0.1");
  let tcpText = "";
  tcp.on("data", (d) => { tcpText += d; });
  const tcpSaw = async (s) => { for (let i = 0; i < 600 && !tcpText.includes(s); i++) await new Promise((r) => setTimeout(r, 50)); if (!tcpText.includes(s)) fail("TCP user never saw " + s + "\n" + tcpText); };
  tcp.write("/nick term\n");
  await tcpSaw("* you are term\n");

  browser = await chromium.launch({ executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  const open = async (viewport) => {
    const page = await (await browser.newContext({ viewport })).newPage();
    page.on("dialog", (d) => { d.dismiss(); fail("a dialog opened: " + d.message()); });
    await page.goto(url);
    await page.locator("#status.ok").waitFor();
    return page;
  };
  const say = async (page, text) => { await page.fill("#input", text); await page.press("#input", "Enter"); };
  const shows = (page, text) => page.locator("#messages li", { hasText: text }).first().waitFor();

  const alice = await open({ width: 1024, height: 700 });
  const bob = await open({ width: 375, height: 667 });  // a phone
  await say(alice, "/nick alice");
  await say(bob, "/nick bob");
  await alice.locator("#members li", { hasText: "bob" }).waitFor();
  await alice.locator("#members li", { hasText: "term" }).waitFor();

  const xss = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
  await say(alice, xss);
  await shows(bob, xss);
  await tcpSaw("<alice> " + xss + "\n");
  if (await bob.locator("#messages img, #messages script").count() !== 0) fail("the XSS attempt became markup");
  if (await bob.evaluate(() => window.pwned) !== undefined) fail("the XSS attempt ran");
  await alice.locator("#messages li.own", { hasText: xss }).waitFor();  // alice's own message is marked
  if (await bob.locator("#messages li.own", { hasText: xss }).count() !== 0) fail("bob's page marked alice's message as his");

  await say(bob, "hello from the phone");
  await tcpSaw("<bob> hello from the phone\n");
  tcp.write("hello from the terminal\n");
  await shows(alice, "hello from the terminal");
  await shows(bob, "hello from the terminal");

  await bob.reload();
  await bob.locator("#status.ok").waitFor();
  await shows(bob, "hello from the phone");  // the history after a reload
  await shows(bob, "hello from the terminal");
  if (await bob.locator("#messages img").count() !== 0) fail("the replayed XSS attempt became markup");
  await bob.screenshot({ path: screenshot, fullPage: true });
  tcp.end();
  console.log("chat_browser_test: ok (screenshot " + screenshot + ")");
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close();
  server.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
}
